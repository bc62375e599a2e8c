#include "job_book.hpp"

#include <fmt/core.h>

#include "builtin/builtin.hpp"

namespace docpipe::core {

JobBook::JobBook(Store& store, Logger& log, std::string pipeline_hash)
    : store_(store), log_(log), pipeline_hash_(std::move(pipeline_hash)) {}

void JobBook::start(Tracker& t, Document& doc) {
    try {
        auto updated = store_.update_job(t.doc_id, [&](Job& j) {
            doc.attributes[kPreviousStatusAttribute] = j.status;
            j.attempts += 1;  // a redelivery of the same content
            j.status = "processing";
            j.last_error.clear();
        });
        if (updated) return;
        t.first_delivery = true;
        Job job;
        job.id = t.doc_id;
        job.root_id = t.doc_id;
        job.status = "processing";
        job.source = t.source_node;
        job.filename = t.label;
        if (auto it = doc.attributes.find("message_id"); it != doc.attributes.end()) job.email_id = it->second;
        job.attempts = 1;
        job.pipeline_hash = pipeline_hash_;
        store_.put_job(job);
    } catch (const std::exception& e) {
        log_.log(LogLevel::Warn, fmt::format("job record not written: {}", e.what()), t.doc_id);
    }
}

void JobBook::end(const Tracker& t, const Outcome& outcome) {
    try {
        store_.update_job(t.doc_id, [&](Job& j) {
            if (!outcome.ok) {
                j.status = "failed";
                j.last_error = outcome.reason;
            } else if (j.status == "processing" || j.status == "received" || j.status == "approved") {
                j.status = "submitted";  // a component may have set its own (review, skipped): keep it
            }
        });
    } catch (const std::exception& e) {
        log_.log(LogLevel::Warn, fmt::format("job record not updated: {}", e.what()), t.doc_id);
    }
}

void JobBook::skip(const std::string& job_id, const std::string& node, const std::string& reason) {
    try {
        store_.update_job(job_id, [&](Job& j) {
            if (j.status == "processing" || j.status == "received") {
                j.status = "skipped";
                j.last_error = fmt::format("{}: {}", node, reason);
            }
        });
    } catch (const std::exception& e) {
        log_.log(LogLevel::Warn, fmt::format("job record not updated: {}", e.what()), job_id);
    }
}

void JobBook::claim(const std::string& job_id, const Document& doc, Logger& node_log) {
    try {
        store_.update_job(job_id, [&](Job& j) { record_claim_on_job(doc, j); });
    } catch (const std::exception& e) {
        node_log.log(LogLevel::Warn, fmt::format("claim fields not recorded on the job: {}", e.what()), doc.id);
    }
}

}  // namespace docpipe::core
