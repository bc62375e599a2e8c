#include "admin_actions.hpp"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "admin/page_preview.hpp"
#include "admin/review_data.hpp"
#include "builtin/builtin.hpp"
#include "runtime.hpp"

namespace docpipe::core {

std::optional<std::size_t> AdminActions::node_index(const std::string& name) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i]->name() == name) return i;
    return std::nullopt;
}

using Result = ActionResult::Outcome;

nlohmann::json AdminActions::normalize_corrections(nlohmann::json corrections) const {
    for (const auto& node : nodes_)
        if (const auto* checker = dynamic_cast<const FieldChecker*>(node->component.get())) corrections = checker->normalize_fields(corrections);
    return corrections;
}

nlohmann::json AdminActions::check_corrections(const nlohmann::json& corrections) const {
    nlohmann::json problems = nlohmann::json::object();
    for (const auto& node : nodes_) {
        const auto* checker = dynamic_cast<const FieldChecker*>(node->component.get());
        if (!checker) continue;
        for (auto& [field, why] : checker->check_fields(corrections))
            if (!problems.contains(field)) problems[field] = why;
    }
    return problems;
}

ActionResult AdminActions::retry_job(const std::string& id) {
    auto job = store_.get_job(id);
    if (!job) return ActionResult::fail(Result::NotFound, "no such job");
    if (job->status != "failed" && job->status != "partial")
        return ActionResult::fail(Result::Conflict, fmt::format("job is '{}'; only failed or partial jobs can be retried", job->status));
    auto letters = dead_letters_.for_job(id);
    if (letters.empty())
        return ActionResult::fail(Result::Invalid, "no dead letter is stored for this job, so there is nothing to re-run");
    // A document the member sent again in another email, which went through there
    // (transform.dedup wrote `resent_as`): re-running it here would book the receipt twice.
    std::vector<std::string> resent;
    if (const auto& refs = job->references; refs.is_object() && refs.contains("resent_as") && refs["resent_as"].is_object()) {
        std::erase_if(letters, [&](const DeadLetters::Letter& letter) {
            const auto by = refs["resent_as"].find(letter.doc.id);
            if (by == refs["resent_as"].end() || !by->is_string()) return false;
            resent.push_back(fmt::format("{} (sent again as job {})", letter.doc.id, by->get<std::string>()));
            dead_letters_.remove(letter.key, letter.index_key);
            return true;
        });
        if (letters.empty())
            return ActionResult::fail(Result::Conflict,
                                      fmt::format("not retried: every failed document of this job was sent again in another email "
                                                  "and processed there: {}; retrying would book it twice",
                                                  fmt::join(resent, ", ")));
    }
    std::vector<std::size_t> targets;
    for (const auto& letter : letters) {
        auto node = node_index(letter.node);
        if (!node)
            return ActionResult::fail(Result::Invalid,
                                      fmt::format("the dead letter names node '{}', which this pipeline no longer has", letter.node));
        targets.push_back(*node);
    }
    // Compare-and-set: two retries at once start the job once.
    bool still_retryable = false;
    store_.update_job(id, [&](Job& j) {
        still_retryable = j.status == "failed" || j.status == "partial";
        if (!still_retryable) return;
        j.status = "processing";
        j.attempts += 1;
        j.last_error.clear();
    });
    if (!still_retryable) return ActionResult::fail(Result::Conflict, "job is no longer failed: it was retried or changed meanwhile");
    // An approved job whose delivery failed keeps its parked documents (so that it can be
    // returned to review); once a retry delivers one, they go, as after an approval that went
    // through at once.
    const bool approved = job->references.is_object() && job->references.contains("approved_at");
    auto group = std::make_shared<ReentryGroup>();
    group->size = letters.size();
    for (std::size_t i = 0; i < letters.size(); ++i) {
        const std::string key = letters[i].key, index_key = letters[i].index_key;
        const std::string review_key = fmt::format("review/{}/{}", id, letters[i].doc.id);
        const std::string pages_prefix = admin::review_page_prefix(id, letters[i].doc.id);
        std::optional<std::string> parked;
        if (approved) {
            try {
                parked = store_.get(review_key);
            } catch (const std::exception&) {
                // Left for now: a later rejection or approval of the job clears it.
            }
        }
        const std::string doc_id = letters[i].doc.id;
        AckHandle done = [this, id, doc_id, key, index_key, review_key, pages_prefix, parked](const Outcome& o) {
            // A failure again wrote a letter of its own, which replaces this one: kept, every
            // failed retry doubled the job's letters, and the next retry sent the document
            // that many times. Kept only when the new one could not be stored.
            if (o.ok || !o.keep_input) dead_letters_.remove(key, index_key);
            if (o.ok && parked) forget_parked(id, doc_id, review_key, pages_prefix, *parked);
        };
        auto doc = std::make_shared<const Document>(std::move(letters[i].doc));
        // A letter a source recorded (SourceEmitter::reject) re-enters after that source.
        if (graph_.is_source(targets[i])) graph_.inject_after_source(targets[i], id, std::move(doc), std::move(done), group);
        else graph_.inject(targets[i], id, std::move(doc), std::move(done), DescendantOutcome::Kind::Failed, group);
    }
    log_.log(LogLevel::Info,
             resent.empty() ? fmt::format("retrying job from {} dead letter(s)", letters.size())
                            : fmt::format("retrying job from {} dead letter(s); not re-run, sent again elsewhere: {}", letters.size(),
                                          fmt::join(resent, ", ")),
             id);
    return ActionResult::done();
}

namespace {

// A document's claim fields: under "claim" for a claim document (docpipe/claim.hpp), else
// at the top of its fields.
const nlohmann::json& claim_fields(const Document& doc) {
    static const nlohmann::json none = nlohmann::json::object();
    if (auto c = doc.fields.find("claim"); c != doc.fields.end() && c->is_object()) return *c;
    return doc.fields.is_object() ? doc.fields : none;
}

nlohmann::json current_value(const Document& doc, const std::string& field) {
    const auto& fields = claim_fields(doc);
    auto it = fields.find(field);
    if (it == fields.end()) return nullptr;
    return it->is_object() ? it->value("value", nlohmann::json()) : *it;
}

std::string document_name(const Document& doc) { return doc.parts.empty() ? std::string() : doc.parts.front().name; }

// Writes a reviewer's value into a parked document, as transform.claims would have.
void apply_correction(Document& doc, const std::string& field, const nlohmann::json& value) {
    nlohmann::json corrected{{"value", value}, {"confidence", 1.0}, {"source", "reviewer"}, {"provenance", {{"source", "reviewer"}}}};
    if (!doc.fields.contains("claim")) {
        doc.fields[field] = std::move(corrected);
        return;
    }
    doc.fields["claim"][field] = std::move(corrected);
    if (auto m = doc.fields.find("missing"); m != doc.fields.end() && m->is_array()) {
        nlohmann::json still = nlohmann::json::array();
        for (const auto& x : *m) {
            const auto name = x.is_string() ? x.get<std::string>() : docpipe::json_text(x);
            const bool fixed = name == field || (name == "member_id or policy_number" && (field == "member_id" || field == "policy_number"));
            if (!fixed) still.push_back(x);
        }
        *m = still;
    }
}

}  // namespace

ActionResult AdminActions::approve(const std::string& id, const Corrections& corrections, const std::string& notes) {
    auto job = store_.get_job(id);
    if (!job) return ActionResult::fail(Result::NotFound, "no such job");
    if (job->status != "review")
        return ActionResult::fail(Result::Conflict, fmt::format("job is '{}'; only jobs in review can be approved", job->status));
    if (!approved_node_)
        return ActionResult::fail(Result::Invalid, "admin.approved_node is not set: the pipeline names no node for approved documents");
    nlohmann::json job_wide = corrections.fields.is_object() ? corrections.fields : nlohmann::json::object();
    nlohmann::json per_doc = corrections.documents.is_object() ? corrections.documents : nlohmann::json::object();
    {
        nlohmann::json problems = check_corrections(job_wide);
        for (const auto& [doc_id, fields] : per_doc.items()) {
            const nlohmann::json own = check_corrections(fields);
            for (const auto& [field, why] : own.items()) problems["documents." + doc_id + "." + field] = why;
        }
        if (!problems.empty())
            return ActionResult::fail(Result::Invalid, fmt::format("{} corrected field(s) are not valid; nothing was changed", problems.size()),
                                      problems);
    }
    // Stored as the pipeline's components store them: "RM 479.05" passed the check and then,
    // kept as text, was no amount NCB could be sent.
    job_wide = normalize_corrections(std::move(job_wide));
    for (auto& [doc_id, fields] : per_doc.items()) fields = normalize_corrections(fields);
    // Another reviewer's approval may go through between the status read above and here,
    // and its delivery removes the parked documents: then this one lost the race (409), it
    // did not send anything invalid.
    auto moved_on = [&]() -> std::optional<ActionResult> {
        auto now = store_.get_job(id);
        if (now && now->status != "review")
            return ActionResult::fail(Result::Conflict, "job is no longer in review: another reviewer acted on it first");
        return std::nullopt;
    };
    auto keys = store_.keys("review/" + id + "/", 1000);
    if (keys.empty()) return moved_on().value_or(ActionResult::fail(Result::Invalid, "no parked document is stored for this job"));
    std::vector<std::pair<std::string, Document>> docs;
    std::map<std::string, std::string> records;  // key -> the parked record as read here
    for (const auto& key : keys) {
        auto text = store_.get(key);
        if (!text) continue;
        docs.emplace_back(key, Document::from_json(nlohmann::json::parse(*text).at("document")));
        records[key] = *text;
    }
    if (docs.empty()) return moved_on().value_or(ActionResult::fail(Result::Invalid, "the parked documents for this job are gone"));

    // Per-document corrections name documents of this job.
    std::vector<std::string> parked_ids;
    for (const auto& [key, doc] : docs) parked_ids.push_back(doc.id);
    nlohmann::json unknown = nlohmann::json::object();
    for (const auto& [doc_id, fields] : per_doc.items())
        if (std::find(parked_ids.begin(), parked_ids.end(), doc_id) == parked_ids.end())
            unknown["documents." + doc_id] = fmt::format("no document with this id is parked for this job (parked: {})", fmt::join(parked_ids, ", "));
    if (!unknown.empty())
        return ActionResult::fail(Result::Malformed, "the corrections name a document this job has not parked; nothing was changed", unknown);

    // A job-wide correction is only unambiguous when every document it reaches (those
    // without their own correction of the field) says the same thing now: with two receipts
    // totalling 12.00 and 30.00, "total_amount: 31.00" would overwrite the right one too.
    // One that reaches no document (each gives its own value) would change nothing, yet be
    // recorded as a change in the audit and the job's fields: refused too.
    nlohmann::json ambiguous = nlohmann::json::object();
    std::vector<std::string> ambiguous_names;
    for (const auto& [field, value] : job_wide.items()) {
        const bool reaches_one = std::any_of(docs.begin(), docs.end(), [&, &field = field](const auto& entry) {
            const auto own = per_doc.find(entry.second.id);
            return own == per_doc.end() || !own->contains(field);
        });
        if (!reaches_one) {
            ambiguous[field] = "every document gives its own value under 'documents', so this one applies to none; leave it out";
            ambiguous_names.push_back(field);
            continue;
        }
        std::vector<std::string> seen;  // "doc: value", one per document it reaches
        std::vector<nlohmann::json> values;
        for (const auto& [key, doc] : docs) {
            if (auto own = per_doc.find(doc.id); own != per_doc.end() && own->contains(field)) continue;
            const nlohmann::json v = current_value(doc, field);
            if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
            seen.push_back(fmt::format("{}: {}", doc.id, docpipe::json_text(v)));
        }
        if (values.size() > 1) {
            ambiguous[field] = fmt::format("the job's documents differ ({}); correct each under 'documents' -> doc id -> 'fields'",
                                           fmt::join(seen, "; "));
            ambiguous_names.push_back(field);
        }
    }
    if (!ambiguous.empty())
        return ActionResult::fail(Result::Malformed,
                                  fmt::format("'fields' would set {} on the {} documents of this job, which differ in it now or "
                                              "each give their own; send per-document corrections under 'documents' instead; "
                                              "nothing was changed",
                                              fmt::join(ambiguous_names, ", "), docs.size()),
                                  ambiguous);

    // The job-wide changes of a job with several documents, from the value every document
    // it reaches shares (checked above), read before anything is corrected.
    nlohmann::json job_wide_changes = nlohmann::json::object();
    for (const auto& [field, value] : job_wide.items()) {
        nlohmann::json from = nullptr;
        for (const auto& [key, doc] : docs)
            if (auto own = per_doc.find(doc.id); own == per_doc.end() || !own->contains(field)) {
                from = current_value(doc, field);
                break;
            }
        job_wide_changes[field] = {{"from", from}, {"to", value}};
    }

    const std::string approved_at = iso8601(std::chrono::system_clock::now());
    nlohmann::json by_doc = nlohmann::json::object();
    std::size_t changed_fields = 0;
    for (auto& [key, doc] : docs) {
        nlohmann::json effective = job_wide;
        if (auto own = per_doc.find(doc.id); own != per_doc.end()) effective.update(*own);
        if (!effective.empty()) {
            by_doc[doc.id] = {{"name", document_name(doc)}, {"changes", admin::field_changes(claim_fields(doc), effective)}};
            changed_fields += effective.size();
        }
        for (const auto& [field, value] : effective.items()) apply_correction(doc, field, value);
        if (doc.fields.contains("claim")) doc.fields["reviewed"] = true;
        if (!notes.empty()) doc.attributes["reviewer_notes"] = notes;
        doc.attributes[kJobIdAttribute] = id;
        doc.attributes[kApprovedAtAttribute] = approved_at;
    }
    // The job's own fields mirror one claim: with one document, its corrections; with
    // several, the job-wide ones (the same on each). Per-document corrections of a job with
    // several documents reach its fields when the approved claims settle.
    nlohmann::json job_corrections = job_wide;
    if (docs.size() == 1)
        if (auto own = per_doc.find(docs.front().second.id); own != per_doc.end()) job_corrections.update(*own);
    nlohmann::json audit{{"documents", by_doc}};
    if (docs.size() == 1) audit["changes"] = by_doc.contains(docs.front().second.id) ? by_doc[docs.front().second.id]["changes"] : nlohmann::json::object();
    else audit["changes"] = std::move(job_wide_changes);

    // Compare-and-set: of two reviewers acting at once, only the first finds it in review.
    bool still_in_review = false;
    store_.update_job(id, [&](Job& j) {
        still_in_review = j.status == "review";
        if (!still_in_review) return;
        j.status = "approved";
        j.owner = owner_;  // a restart after this process stopped returns it to review (JobBook)
        for (const auto& [field, value] : job_corrections.items())
            j.fields[field] = {{"value", value}, {"confidence", 1.0}, {"provenance", {{"source", "reviewer"}}}};
        if (!notes.empty()) j.references["reviewer_notes"] = notes;
        // Stays once the approved claims are delivered and the job is `submitted`: the
        // dashboard tells a reviewer's claims from those no person looked at.
        j.references["approved_at"] = approved_at;
        j.last_error.clear();
    });
    if (!still_in_review) return ActionResult::fail(Result::Conflict, "job is no longer in review: another reviewer acted on it first");
    auto group = std::make_shared<ReentryGroup>();
    group->size = docs.size();
    for (auto& [key, doc] : docs) {
        // The parked document (and its page images) stays until its approval went through,
        // so a job that fails after approval (or whose process stops first) can be returned to
        // review. It is parked corrected: returned to review, it used to show the values from
        // before the corrections, and approving it again booked those at NCB.
        std::string parked = records[key];
        try {
            auto record = nlohmann::json::parse(parked);
            record["document"] = doc.to_json(true);
            parked = docpipe::json_text(record);
            store_.put(key, parked);
        } catch (const std::exception& e) {
            log_.log(LogLevel::Warn, fmt::format("the parked document could not be updated with the corrections: {}", e.what()), id);
        }
        const std::string review_key = key;
        const std::string pages_prefix = admin::review_page_prefix(id, doc.id);
        const std::string doc_id = doc.id;
        graph_.inject(*approved_node_, id, std::make_shared<const Document>(std::move(doc)),
                      [this, id, doc_id, review_key, pages_prefix, parked](const Outcome& o) {
            if (o.ok) forget_parked(id, doc_id, review_key, pages_prefix, parked);
        }, DescendantOutcome::Kind::Review, group);
    }
    log_.log(LogLevel::Info, fmt::format("approved by a reviewer with {} correction(s) over {} document(s); sent to node '{}'",
                                         changed_fields, docs.size(), nodes_[*approved_node_]->name()), id);
    ActionResult done = ActionResult::done();
    done.audit = std::move(audit);
    return done;
}

void AdminActions::forget_parked(const std::string& job_id, const std::string& doc_id, const std::string& review_key,
                                 const std::string& pages_prefix, const std::string& parked) noexcept {
    try {
        // The job's ack is for the whole job: a `partial` one acks ok while this document
        // failed again. Only this document's own outcome says it went through.
        const auto job = store_.get_job(job_id);
        if (!job) return;
        bool delivered = false;
        for (const auto& o : job->outcomes())
            if (o.value("doc_id", "") == doc_id) delivered = o.value("status", "") == "submitted";
        if (!delivered) return;
        // Parked again by this very delivery (NCB refused the corrected claim too): the
        // record was rewritten, and it is what the next approval needs.
        if (store_.get(review_key) != parked) return;
        store_.erase(review_key);
        for (const auto& page_key : store_.keys(pages_prefix, 1000)) store_.erase(page_key);
    } catch (const std::exception&) {
        // Left behind: a rejection or approval of the job clears it later.
    }
}

ActionResult AdminActions::reject(const std::string& id, const std::string& reason) {
    auto job = store_.get_job(id);
    if (!job) return ActionResult::fail(Result::NotFound, "no such job");
    if (job->status != "review")
        return ActionResult::fail(Result::Conflict, fmt::format("job is '{}'; only jobs in review can be rejected", job->status));
    bool still_in_review = false;
    store_.update_job(id, [&](Job& j) {
        still_in_review = j.status == "review";
        if (!still_in_review) return;
        j.status = "rejected";
        j.last_error = reason;
        // The documents the reviewer decided on: their outcomes said "review" for good.
        nlohmann::json outcomes = j.outcomes();
        for (auto& o : outcomes)
            if (o.value("status", "") == "review") {
                o["status"] = "rejected";
                o["reason"] = "rejected by a reviewer: " + reason;
            }
        j.set_outcomes_text(docpipe::json_text(outcomes));
    });
    if (!still_in_review) return ActionResult::fail(Result::Conflict, "job is no longer in review: another reviewer acted on it first");
    for (const auto& key : store_.keys("review/" + id + "/", 1000)) store_.erase(key);
    for (const auto& key : store_.keys(admin::review_page_prefix(id), 10000)) store_.erase(key);
    log_.log(LogLevel::Info, "rejected by a reviewer", id);
    return ActionResult::done();
}

ActionResult AdminActions::return_to_review(const std::string& id) {
    auto job = store_.get_job(id);
    if (!job) return ActionResult::fail(Result::NotFound, "no such job");
    if (job->status != "failed" && job->status != "partial")
        return ActionResult::fail(Result::Conflict, fmt::format("job is '{}'; only a job that failed can be returned to review", job->status));
    // The documents still parked are the ones whose approval did not go through.
    std::set<std::string> parked;
    const std::string prefix = "review/" + id + "/";
    for (const auto& key : store_.keys(prefix, 1000)) parked.insert(key.substr(prefix.size()));
    if (parked.empty())
        return ActionResult::fail(Result::Invalid, "this job has no parked review documents (it never was in review); retry it instead");
    bool changed = false;
    store_.update_job(id, [&](Job& j) {
        changed = j.status == "failed" || j.status == "partial";
        if (!changed) return;
        nlohmann::json outcomes = j.outcomes();
        for (auto& o : outcomes)
            if (o.value("status", "") == "failed" && parked.count(o.value("doc_id", ""))) {
                o["status"] = "review";
                o["reason"] = "returned to review after a failed approval: " + o.value("reason", "");
            }
        j.set_outcomes_text(docpipe::json_text(outcomes));
        j.status = "review";
        // The failed approval's note and time are in the audit trail; the next approval brings its own.
        if (j.references.is_object()) {
            j.references.erase("reviewer_notes");
            j.references.erase("approved_at");
        }
        j.last_error = "returned to review: " + j.last_error;
    });
    if (!changed) return ActionResult::fail(Result::Conflict, "job changed meanwhile; reload it");
    // Its dead letters would re-send the same documents: the review decides now.
    for (const auto& letter : dead_letters_.for_job(id))
        if (parked.count(letter.doc.id)) dead_letters_.remove(letter.key, letter.index_key);
    log_.log(LogLevel::Info, "returned to review after its approval failed", id);
    return ActionResult::done();
}

std::string local_admin_key(const std::filesystem::path& file, Logger& log) {
    std::ifstream in(file);
    std::string key;
    if (in >> key && key.size() >= 32) {
        log.log(LogLevel::Info, fmt::format("admin API key read from {} (send it as X-API-Key)", file.string()));
        return key;
    }
    key = generate_api_key();
    std::error_code ec;
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw StartError(fmt::format("admin: cannot write the generated API key to {}: {}", file.string(), std::strerror(errno)));
    ::fchmod(fd, 0600);  // also when the file existed with wider permissions
    std::string line = key + "\n";
    bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!written) throw StartError("admin: cannot write the generated API key to " + file.string());
    log.log(LogLevel::Warn, fmt::format("no admin.api_keys configured: generated a random API key and wrote it to {} (mode 0600); "
                                        "send it as X-API-Key, or configure admin.api_keys", file.string()));
    return key;
}

std::optional<HookResponse> AdminActions::hook(const std::string& node, const HookRequest& request) {
    for (const auto& n : nodes_) {
        if (n->name() != node) continue;
        auto* hook = dynamic_cast<HttpHook*>(n->component.get());
        if (!hook) return std::nullopt;
        return hook->handle_hook(request);
    }
    return std::nullopt;
}

}  // namespace docpipe::core
