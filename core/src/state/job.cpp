#include <algorithm>

#include "store.hpp"

namespace docpipe::core {

bool is_job_status(std::string_view status) {
    return std::any_of(std::begin(kJobStatuses), std::end(kJobStatuses), [&](const char* s) { return status == s; });
}

bool is_terminal_status(std::string_view status) {
    return status == "submitted" || status == "review" || status == "approved" || status == "rejected" || status == "failed" ||
           status == "skipped" || status == "partial";
}

void accumulate(JobAggregate& a, const Job& job) {
    a.total++;
    a.by_status[job.status]++;
    if (job.status == "submitted" && job.references.is_object() && job.references.contains("approved_at")) a.submitted_after_approval++;
    if (job.confidence > 0) {
        a.confidence_sum += job.confidence;
        a.confidence_count++;
        a.confidence_histogram[std::min<std::size_t>(9, static_cast<std::size_t>(job.confidence * 10))]++;
    }
    if (is_terminal_status(job.status) && job.updated_ms >= job.created_ms) {
        a.processing_ms_sum += static_cast<double>(job.updated_ms - job.created_ms);
        a.processing_count++;
        if (job.status == "submitted") {
            a.submission_ms_sum += static_cast<double>(job.updated_ms - job.created_ms);
            a.submission_count++;
        }
    }
    a.by_hour[static_cast<std::size_t>((job.created_ms / 3'600'000) % 24)]++;
    if (job.fields.contains("provider_name")) {
        const auto& p = job.fields["provider_name"];
        const auto& v = p.is_object() ? p.value("value", nlohmann::json()) : p;
        if (v.is_string() && !v.get<std::string>().empty()) a.providers[v.get<std::string>()]++;
    }
}

JobAggregate Store::aggregate_jobs(std::int64_t from_ms, std::int64_t to_ms) {
    JobAggregate a;
    JobQuery q;
    q.from_ms = from_ms;
    q.to_ms = to_ms;
    q.limit = 1000;
    q.newest_first = false;
    for (q.offset = 0;; q.offset += q.limit) {
        JobPage page = list_jobs(q);
        for (const auto& j : page.jobs) accumulate(a, j);
        if (page.jobs.size() < q.limit) break;
    }
    return a;
}

namespace {
// Every member but the outcomes and the timeline, which are stored as JSON text.
nlohmann::json without_trace(const Job& job) {
    return {{"id", job.id},
            {"root_id", job.root_id},
            {"status", job.status},
            {"source", job.source},
            {"filename", job.filename},
            {"email_id", job.email_id},
            {"fields", Job::or_empty(job.fields)},
            {"confidence", job.confidence},
            {"confidence_level", job.confidence_level},
            {"references", Job::or_empty(job.references)},
            {"attempts", job.attempts},
            {"last_error", job.last_error},
            {"pipeline_hash", job.pipeline_hash.str()},
            {"duplicate_of", job.duplicate_of},
            {"owner", job.owner},
            {"created_ms", job.created_ms},
            {"updated_ms", job.updated_ms}};
}
}  // namespace

const nlohmann::json& Job::or_empty(const nlohmann::json& member) {
    static const nlohmann::json empty_object = nlohmann::json::object();
    return member.is_null() ? empty_object : member;
}

std::string Job::outcomes_text() const {
    if (!delivery_) return outcomes_json_;
    std::string text;
    delivery_->append_outcomes(text);
    return text;
}

std::string Job::trace_text() const {
    if (!delivery_) return trace_json_;
    std::string text;
    delivery_->append_trace(text);
    return text;
}

void Job::set_outcomes_text(std::string text) {
    if (delivery_) {  // the timeline stays the delivery's
        trace_json_ = trace_text();
        delivery_.reset();
    }
    outcomes_json_ = std::move(text);
}

void Job::set_trace_text(std::string text) {
    if (delivery_) {  // the outcomes stay the delivery's
        outcomes_json_ = outcomes_text();
        delivery_.reset();
    }
    trace_json_ = std::move(text);
}

void Job::set_delivery(std::shared_ptr<const DeliveryRecord> delivery) {
    delivery_ = std::move(delivery);
    if (!delivery_) return;
    // Superseded: not kept twice.
    outcomes_json_.clear();
    trace_json_.clear();
}

nlohmann::json Job::outcomes() const {
    auto parsed = nlohmann::json::parse(outcomes_text(), nullptr, false);
    return parsed.is_array() ? parsed : nlohmann::json::array();
}

nlohmann::json Job::to_json() const {
    nlohmann::json j = without_trace(*this);
    j["outcomes"] = outcomes();
    auto timeline = nlohmann::json::parse(trace_text(), nullptr, false);
    j["trace"] = timeline.is_array() ? std::move(timeline) : nlohmann::json::array();
    return j;
}

std::string Job::to_json_text() const {
    std::string text = docpipe::json_text(without_trace(*this));
    // Splice the texts in as the last members: {...,"outcomes":[...],"trace":[...]}
    text.pop_back();
    text += ",\"outcomes\":";
    if (delivery_) delivery_->append_outcomes(text);
    else text += outcomes_json_.empty() ? std::string_view("[]") : std::string_view(outcomes_json_);
    text += ",\"trace\":";
    if (delivery_) delivery_->append_trace(text);
    else text += trace_json_.empty() ? std::string_view("[]") : std::string_view(trace_json_);
    text += '}';
    return text;
}

Job Job::from_json(const nlohmann::json& j) {
    Job job;
    job.id = j.value("id", "");
    job.root_id = j.value("root_id", "");
    job.status = j.value("status", "received");
    job.source = j.value("source", "");
    job.filename = j.value("filename", "");
    job.email_id = j.value("email_id", "");
    job.fields = j.value("fields", nlohmann::json::object());
    job.confidence = j.value("confidence", 0.0);
    job.confidence_level = j.value("confidence_level", "");
    job.references = j.value("references", nlohmann::json::object());
    job.attempts = j.value("attempts", 0);
    job.last_error = j.value("last_error", "");
    job.pipeline_hash = SharedText(j.value("pipeline_hash", ""));
    job.duplicate_of = j.value("duplicate_of", "");
    if (auto o = j.find("outcomes"); o != j.end() && o->is_array()) job.outcomes_json_ = docpipe::json_text(*o);
    job.owner = j.value("owner", "");
    if (auto t = j.find("trace"); t != j.end() && t->is_array()) job.trace_json_ = docpipe::json_text(*t);
    job.created_ms = j.value("created_ms", std::int64_t{0});
    job.updated_ms = j.value("updated_ms", std::int64_t{0});
    return job;
}

bool record_claim_on_job(const Document& doc, Job& job) {
    if (!doc.fields.contains("claim")) return false;
    job.fields = doc.fields["claim"];
    job.confidence = doc.fields.value("confidence", 0.0);
    job.confidence_level = doc.fields.value("confidence_level", "");
    // The Message-ID is known only once transform.mime has read the email.
    if (auto m = doc.attributes.find("message_id"); job.email_id.empty() && m != doc.attributes.end()) job.email_id = m->second;
    return true;
}

}  // namespace docpipe::core
