// The "memory" backend: for tests and throwaway runs; nothing survives the process.
#include <algorithm>
#include <map>
#include <unordered_map>
#include <mutex>

#include "docpipe/testing.hpp"
#include "store.hpp"

namespace docpipe::core {

namespace {

class MemoryStore : public Store {
public:
    explicit MemoryStore(Clock& clock) : clock_(clock), kv_(clock) {}
    std::string backend() const override { return "memory"; }
    HealthReport probe() override { return {Health::Healthy, "in-process memory"}; }

    std::optional<std::string> get(std::string_view key) override { return kv_.get(key); }
    void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) override { kv_.put(key, value, ttl); }
    bool put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
        return kv_.put_if_absent(key, value, ttl);
    }
    bool erase(std::string_view key) override { return kv_.erase(key); }
    std::vector<std::string> keys(std::string_view prefix, std::size_t limit) override { return kv_.keys(prefix, limit); }

    void put_job(const Job& job) override {
        std::lock_guard lock(mutex_);
        Job copy = job;
        copy.updated_ms = now_ms();
        if (copy.created_ms == 0) copy.created_ms = copy.updated_ms;
        jobs_[job.id] = std::move(copy);
    }
    std::optional<Job> get_job(const std::string& id) override {
        std::lock_guard lock(mutex_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return std::nullopt;
        return it->second;
    }
    std::optional<Job> update_job(const std::string& id, const std::function<void(Job&)>& change) override {
        std::lock_guard lock(mutex_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return std::nullopt;
        change(it->second);
        it->second.updated_ms = now_ms();
        return it->second;
    }
    bool modify_job(const std::string& id, const std::function<void(Job&)>& change) override {
        std::lock_guard lock(mutex_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return false;
        change(it->second);
        it->second.updated_ms = now_ms();
        return true;
    }
    std::optional<std::string> open_job(Job fresh) override {
        const std::int64_t now = now_ms();
        const std::string id = fresh.id;
        const std::string owner = fresh.owner;
        std::lock_guard lock(mutex_);
        auto [it, created] = jobs_.try_emplace(id, std::move(fresh));  // moved only when created
        Job& job = it->second;
        if (created) {
            job.created_ms = job.created_ms ? job.created_ms : now;
            job.updated_ms = now;
            return std::nullopt;
        }
        std::optional<std::string> previous = job.status;
        reopen_job(job, owner);
        job.updated_ms = now;
        return previous;
    }
    JobPage list_jobs(const JobQuery& q) override {
        std::lock_guard lock(mutex_);
        std::vector<const Job*> matches;
        for (const auto& [id, job] : jobs_) {
            if (q.status && job.status != *q.status) continue;
            if (q.email_id && job.email_id != *q.email_id) continue;
            if (q.root_id && (job.root_id != *q.root_id || job.id == *q.root_id)) continue;
            if (q.from_ms && job.created_ms < *q.from_ms) continue;
            if (q.to_ms && job.created_ms > *q.to_ms) continue;
            matches.push_back(&job);
        }
        std::sort(matches.begin(), matches.end(), [&](const Job* a, const Job* b) {
            if (a->created_ms != b->created_ms) return q.newest_first ? a->created_ms > b->created_ms : a->created_ms < b->created_ms;
            return q.newest_first ? a->id > b->id : a->id < b->id;
        });
        JobPage page;
        page.total = matches.size();
        for (std::size_t i = q.offset; i < matches.size() && i < q.offset + q.limit; ++i) {
            if (q.raw) page.raw.push_back(matches[i]->to_json_text());
            else page.jobs.push_back(*matches[i]);
        }
        return page;
    }
    std::map<std::string, std::size_t> count_jobs_by_status() override {
        std::lock_guard lock(mutex_);
        std::map<std::string, std::size_t> counts;
        for (const auto& [id, job] : jobs_) counts[job.status]++;
        return counts;
    }

private:
    std::int64_t now_ms() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
    }
    Clock& clock_;
    testing::MemoryStateStore kv_;  // same semantics as the SDK's testing store
    std::mutex mutex_;
    std::unordered_map<std::string, Job> jobs_;  // list_jobs sorts its matches itself
};

}  // namespace

std::unique_ptr<Store> make_memory_store(Clock& clock) { return std::make_unique<MemoryStore>(clock); }

}  // namespace docpipe::core
