// Chooses a backend by name.
#include "store.hpp"

namespace docpipe::core {

std::unique_ptr<Store> make_memory_store(Clock& clock);
std::unique_ptr<Store> make_sqlite_store(const std::string& path, Clock& clock);
std::unique_ptr<Store> make_redis_store(const std::string& url, Clock& clock);

std::unique_ptr<Store> open_store(const std::string& backend, const std::string& path_or_url, Clock& clock) {
    if (backend == "memory") return make_memory_store(clock);
    if (backend == "sqlite") return make_sqlite_store(path_or_url, clock);
    if (backend == "redis") return make_redis_store(path_or_url, clock);
    throw StoreError("unknown state backend '" + backend + "' (sqlite, redis or memory)");
}

bool Store::modify_job(const std::string& id, const std::function<void(Job&)>& change) {
    return update_job(id, change).has_value();
}

void reopen_job(Job& job, const std::string& owner) {
    job.attempts += 1;  // a redelivery of the same content
    job.status = "processing";
    job.owner = owner;
    job.last_error.clear();
}

void JobOpening::fill(Job& job) const {
    job.id = id;
    job.root_id = root_id;
    job.status = "processing";
    job.source = source;
    job.filename = filename;
    job.owner = owner;
    job.email_id = email_id;
    job.attempts = 1;
    job.pipeline_hash = pipeline_hash;
}

Job JobOpening::job() const {
    Job job;
    fill(job);
    return job;
}

std::optional<std::string> Store::open_job_from(const JobOpening& opening) { return open_job(opening.job()); }

std::optional<std::string> Store::open_job(Job fresh) {
    std::optional<std::string> previous;
    const bool existed = update_job(fresh.id, [&](Job& j) {
        previous = j.status;
        reopen_job(j, fresh.owner);
    }).has_value();
    if (existed) return previous;
    put_job(fresh);
    return std::nullopt;
}

}  // namespace docpipe::core
