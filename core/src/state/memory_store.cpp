// The "memory" backend: for tests and throwaway runs; nothing survives the process.
#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <mutex>

#include "store.hpp"

namespace docpipe::core {

namespace {

// The key/value half, with the SDK testing store's semantics (TTL, put_if_absent), hashed
// rather than ordered: the delivery ledger puts a key per sink per document, and an
// ordered map of keys sharing their "ledger/<node>/" prefix costs a long comparison at
// every level. keys() — dead letters, listings — scans and sorts instead, which suits a
// backend that holds one process's state.
// Split in shards, each with its own lock: two sinks writing their ledger entries at once
// rarely wait for each other.
class HashedKeyValues {
public:
    explicit HashedKeyValues(Clock& clock) : clock_(clock) {}

    std::optional<std::string> get(std::string_view key) {
        Shard& shard = shard_of(key);
        std::lock_guard lock(shard.mutex);
        const auto it = shard.entries.find(key);
        if (it == shard.entries.end() || !live(it->second)) return std::nullopt;
        return it->second.value;
    }
    void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
        const auto expires = expiry(ttl);
        Shard& shard = shard_of(key);
        std::lock_guard lock(shard.mutex);
        auto it = shard.entries.find(key);
        if (it != shard.entries.end()) it->second = Entry{std::string(value), expires};
        else shard.entries.emplace(std::string(key), Entry{std::string(value), expires});
    }
    bool put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
        const auto expires = expiry(ttl);
        Shard& shard = shard_of(key);
        std::lock_guard lock(shard.mutex);
        auto it = shard.entries.find(key);
        if (it != shard.entries.end()) {
            if (live(it->second)) return false;
            it->second = Entry{std::string(value), expires};
            return true;
        }
        shard.entries.emplace(std::string(key), Entry{std::string(value), expires});
        return true;
    }
    bool erase(std::string_view key) {
        Shard& shard = shard_of(key);
        std::lock_guard lock(shard.mutex);
        const auto it = shard.entries.find(key);
        if (it == shard.entries.end()) return false;
        const bool was_live = live(it->second);
        shard.entries.erase(it);
        return was_live;
    }
    std::vector<std::string> keys(std::string_view prefix, std::size_t limit) {
        std::vector<std::string> out;
        for (auto& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            for (const auto& [key, entry] : shard.entries)
                if (key.compare(0, prefix.size(), prefix) == 0 && live(entry)) out.push_back(key);
        }
        std::sort(out.begin(), out.end());  // the order every backend lists keys in
        if (out.size() > limit) out.resize(limit);
        return out;
    }

private:
    struct Entry {
        std::string value;
        std::chrono::system_clock::time_point expires;
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view key) const noexcept { return std::hash<std::string_view>{}(key); }
    };
    struct Shard {
        std::mutex mutex;
        std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries;
    };
    Shard& shard_of(std::string_view key) { return shards_[std::hash<std::string_view>{}(key) % kShards]; }
    bool live(const Entry& e) const { return e.expires == std::chrono::system_clock::time_point::max() || e.expires > clock_.now(); }
    std::chrono::system_clock::time_point expiry(std::chrono::seconds ttl) const {
        return ttl.count() > 0 ? clock_.now() + ttl : std::chrono::system_clock::time_point::max();
    }

    static constexpr std::size_t kShards = 16;
    Clock& clock_;
    std::array<Shard, kShards> shards_;
};

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
        Job copy = job;
        copy.updated_ms = now_ms();
        if (copy.created_ms == 0) copy.created_ms = copy.updated_ms;
        JobShard& shard = job_shard(job.id);
        std::lock_guard lock(shard.mutex);
        shard.jobs[job.id] = std::move(copy);
    }
    std::optional<Job> get_job(const std::string& id) override {
        JobShard& shard = job_shard(id);
        std::lock_guard lock(shard.mutex);
        auto it = shard.jobs.find(id);
        if (it == shard.jobs.end()) return std::nullopt;
        return it->second;
    }
    std::optional<Job> update_job(const std::string& id, const std::function<void(Job&)>& change) override {
        JobShard& shard = job_shard(id);
        std::lock_guard lock(shard.mutex);
        auto it = shard.jobs.find(id);
        if (it == shard.jobs.end()) return std::nullopt;
        change(it->second);
        it->second.updated_ms = now_ms();
        return it->second;
    }
    bool modify_job(const std::string& id, const std::function<void(Job&)>& change) override {
        JobShard& shard = job_shard(id);
        std::lock_guard lock(shard.mutex);
        auto it = shard.jobs.find(id);
        if (it == shard.jobs.end()) return false;
        change(it->second);
        it->second.updated_ms = now_ms();
        return true;
    }
    std::optional<std::string> open_job(Job fresh) override {
        const std::int64_t now = now_ms();
        JobShard& shard = job_shard(fresh.id);
        std::lock_guard lock(shard.mutex);
        auto it = shard.jobs.find(fresh.id);
        if (it == shard.jobs.end()) {
            fresh.created_ms = fresh.created_ms ? fresh.created_ms : now;
            fresh.updated_ms = now;
            std::string id = fresh.id;
            shard.jobs.emplace(std::move(id), std::move(fresh));
            return std::nullopt;
        }
        Job& job = it->second;
        std::optional<std::string> previous = job.status;
        reopen_job(job, fresh.owner);
        job.updated_ms = now;
        return previous;
    }
    JobPage list_jobs(const JobQuery& q) override {
        const auto locks = lock_all_jobs();
        std::vector<const Job*> matches;
        for (const auto& shard : job_shards_)
            for (const auto& [id, job] : shard.jobs) {
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
        const auto locks = lock_all_jobs();
        std::map<std::string, std::size_t> counts;
        for (const auto& shard : job_shards_)
            for (const auto& [id, job] : shard.jobs) counts[job.status]++;
        return counts;
    }

private:
    std::int64_t now_ms() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
    }
    Clock& clock_;
    HashedKeyValues kv_;  // same semantics as the SDK's testing store
    // Jobs in shards by id, each with its own lock: a source opening jobs and graph threads
    // ending others rarely wait for each other. Listings lock every shard, in order.
    struct JobShard {
        std::mutex mutex;
        std::unordered_map<std::string, Job> jobs;  // list_jobs sorts its matches itself
    };
    static constexpr std::size_t kJobShards = 16;
    JobShard& job_shard(const std::string& id) { return job_shards_[std::hash<std::string>{}(id) % kJobShards]; }
    std::vector<std::unique_lock<std::mutex>> lock_all_jobs() {
        std::vector<std::unique_lock<std::mutex>> locks;
        locks.reserve(kJobShards);
        for (auto& shard : job_shards_) locks.emplace_back(shard.mutex);
        return locks;
    }
    std::array<JobShard, kJobShards> job_shards_;
};

}  // namespace

std::unique_ptr<Store> make_memory_store(Clock& clock) { return std::make_unique<MemoryStore>(clock); }

}  // namespace docpipe::core
