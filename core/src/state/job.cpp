#include <algorithm>

#include "store.hpp"

namespace docpipe::core {

bool is_job_status(std::string_view status) {
    return std::any_of(std::begin(kJobStatuses), std::end(kJobStatuses), [&](const char* s) { return status == s; });
}

nlohmann::json Job::to_json() const {
    return {{"id", id},
            {"root_id", root_id},
            {"status", status},
            {"source", source},
            {"filename", filename},
            {"email_id", email_id},
            {"fields", fields},
            {"confidence", confidence},
            {"confidence_level", confidence_level},
            {"references", references},
            {"attempts", attempts},
            {"last_error", last_error},
            {"pipeline_hash", pipeline_hash},
            {"duplicate_of", duplicate_of},
            {"created_ms", created_ms},
            {"updated_ms", updated_ms}};
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
    job.pipeline_hash = j.value("pipeline_hash", "");
    job.duplicate_of = j.value("duplicate_of", "");
    job.created_ms = j.value("created_ms", std::int64_t{0});
    job.updated_ms = j.value("updated_ms", std::int64_t{0});
    return job;
}

}  // namespace docpipe::core
