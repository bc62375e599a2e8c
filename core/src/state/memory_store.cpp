// The "memory" backend: for tests and throwaway runs; nothing survives the process.
#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <mutex>

#include "store.hpp"

namespace docpipe::core {

namespace {

// A key and its std::hash, computed once per store operation (see HashedKeyValues): the
// table's hash function only reads it back. KeyView is the borrowed form used to look up.
struct KeyView {
    std::string_view text;
    std::size_t hash;
};
struct HashedKey {
    std::string text;
    std::size_t hash;
    bool operator==(const HashedKey& other) const { return hash == other.hash && text == other.text; }
    bool operator==(const KeyView& other) const { return hash == other.hash && text == other.text; }
};
struct HashedKeyHash {
    using is_transparent = void;
    std::size_t operator()(const HashedKey& key) const noexcept { return key.hash; }
    std::size_t operator()(const KeyView& key) const noexcept { return key.hash; }
};
inline KeyView hash_of(std::string_view text) { return {text, std::hash<std::string_view>{}(text)}; }

// The key/value half, with the SDK testing store's semantics (TTL, put_if_absent), hashed
// rather than ordered: the delivery ledger puts a key per sink per document, and an
// ordered map of keys sharing their "ledger/<node>/" prefix costs a long comparison at
// every level. keys() — dead letters, listings — scans and sorts instead, which suits a
// backend that holds one process's state.
// Split in shards, each with its own lock: two sinks writing their ledger entries at once
// rarely wait for each other.
// Each key is hashed once per operation: the hash picks the shard and is kept beside the key
// (Record), so the shard's table neither hashes it again to look it up nor to insert it
// (a ledger put used to hash its key three times).
// Threading: every method may be called from any thread; a shard's table is guarded by its
// mutex, keys() takes the shard locks one at a time.
class HashedKeyValues {
public:
    explicit HashedKeyValues(Clock& clock) : clock_(clock) {}

    std::optional<std::string> get(std::string_view key) {
        const KeyView hashed = hash_of(key);
        Shard& shard = shard_of(hashed);
        std::lock_guard lock(shard.mutex);
        const auto it = shard.entries.find(hashed);
        if (it == shard.entries.end() || !live(*it)) return std::nullopt;
        return std::string(it->value());
    }
    void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
        const auto expires = expiry(ttl);
        const KeyView hashed = hash_of(key);
        Shard& shard = shard_of(hashed);
        std::lock_guard lock(shard.mutex);
        // One lookup for a new key (the common case: a ledger entry per delivery); a key that
        // exists costs the entry built for nothing, then its value is replaced.
        const auto [it, inserted] = shard.entries.emplace(hashed, value, expires);
        if (!inserted) it->replace(value, expires);
    }
    bool put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
        const auto expires = expiry(ttl);
        const KeyView hashed = hash_of(key);
        Shard& shard = shard_of(hashed);
        std::lock_guard lock(shard.mutex);
        // One lookup for a new key, as put().
        const auto [it, inserted] = shard.entries.emplace(hashed, value, expires);
        if (inserted) return true;
        if (live(*it)) return false;
        it->replace(value, expires);
        return true;
    }
    bool erase(std::string_view key) {
        const KeyView hashed = hash_of(key);
        Shard& shard = shard_of(hashed);
        std::lock_guard lock(shard.mutex);
        const auto it = shard.entries.find(hashed);
        if (it == shard.entries.end()) return false;
        const bool was_live = live(*it);
        shard.entries.erase(it);
        return was_live;
    }
    std::vector<std::string> keys(std::string_view prefix, std::size_t limit) {
        std::vector<std::string> out;
        for (auto& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            for (const auto& record : shard.entries)
                if (record.key().substr(0, prefix.size()) == prefix && live(record)) out.emplace_back(record.key());
        }
        std::sort(out.begin(), out.end());  // the order every backend lists keys in
        if (out.size() > limit) out.resize(limit);
        return out;
    }

private:
    // One entry: its key and value share one buffer, with the key's hash and the entry's
    // expiry. The buffer is inside the entry while they fit (a ledger entry, a dedup key: the
    // set's node is then the entry's only allocation), else on the heap. Built in place in
    // the set (emplace) and never moved. The set's elements are const; replace() changes only
    // the value and expiry, never the key or hash the set is ordered by.
    class Record {
    public:
        Record(const KeyView& key, std::string_view value, std::chrono::system_clock::time_point expires)
            : key_size_(key.text.size()), hash_(key.hash), expires_(expires) {
            const std::size_t size = key.text.size() + value.size();
            if (size > kInline) {
                data_ = new char[size];
                capacity_ = size;
            }
            std::memcpy(data_, key.text.data(), key.text.size());
            std::memcpy(data_ + key_size_, value.data(), value.size());
            value_size_ = value.size();
        }
        Record(const Record&) = delete;
        Record& operator=(const Record&) = delete;
        ~Record() {
            if (data_ != inline_) delete[] data_;
        }
        std::string_view key() const { return std::string_view(data_, key_size_); }
        std::string_view value() const { return std::string_view(data_ + key_size_, value_size_); }
        std::size_t hash() const { return hash_; }
        std::chrono::system_clock::time_point expires() const { return expires_; }
        void replace(std::string_view value, std::chrono::system_clock::time_point expires) const {
            if (key_size_ + value.size() > capacity_) {
                char* grown = new char[key_size_ + value.size()];
                std::memcpy(grown, data_, key_size_);
                if (data_ != inline_) delete[] data_;
                data_ = grown;
                capacity_ = key_size_ + value.size();
            }
            std::memcpy(data_ + key_size_, value.data(), value.size());
            value_size_ = value.size();
            expires_ = expires;
        }

    private:
        static constexpr std::size_t kInline = 72;
        std::size_t key_size_;
        std::size_t hash_;
        mutable std::chrono::system_clock::time_point expires_;
        mutable std::size_t value_size_ = 0;
        mutable std::size_t capacity_ = kInline;
        mutable char* data_ = inline_;
        mutable char inline_[kInline];
    };
    struct RecordHash {
        using is_transparent = void;
        std::size_t operator()(const Record& r) const noexcept { return r.hash(); }
        std::size_t operator()(const KeyView& k) const noexcept { return k.hash; }
    };
    struct RecordEqual {
        using is_transparent = void;
        bool operator()(const Record& a, const Record& b) const { return a.hash() == b.hash() && a.key() == b.key(); }
        bool operator()(const Record& a, const KeyView& b) const { return a.hash() == b.hash && a.key() == b.text; }
        bool operator()(const KeyView& a, const Record& b) const { return a.hash == b.hash() && a.text == b.key(); }
    };
    struct Shard {
        std::mutex mutex;
        std::unordered_set<Record, RecordHash, RecordEqual> entries;
    };
    Shard& shard_of(const KeyView& key) { return shards_[key.hash % kShards]; }
    bool live(const Record& r) const {
        return r.expires() == std::chrono::system_clock::time_point::max() || r.expires() > clock_.now();
    }
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
        const KeyView id = hash_of(job.id);
        JobShard& shard = job_shard(id);
        std::lock_guard lock(shard.mutex);
        if (auto it = shard.jobs.find(id); it != shard.jobs.end()) it->second = std::move(copy);
        else shard.jobs.emplace(HashedKey{job.id, id.hash}, std::move(copy));
    }
    std::optional<Job> get_job(const std::string& id) override {
        const KeyView key = hash_of(id);
        JobShard& shard = job_shard(key);
        std::lock_guard lock(shard.mutex);
        auto it = shard.jobs.find(key);
        if (it == shard.jobs.end()) return std::nullopt;
        return it->second;
    }
    std::optional<Job> update_job(const std::string& id, const std::function<void(Job&)>& change) override {
        const KeyView key = hash_of(id);
        JobShard& shard = job_shard(key);
        std::lock_guard lock(shard.mutex);
        auto it = shard.jobs.find(key);
        if (it == shard.jobs.end()) return std::nullopt;
        change(it->second);
        it->second.updated_ms = now_ms();
        return it->second;
    }
    bool modify_job(const std::string& id, const std::function<void(Job&)>& change) override {
        const KeyView key = hash_of(id);
        JobShard& shard = job_shard(key);
        std::lock_guard lock(shard.mutex);
        auto it = shard.jobs.find(key);
        if (it == shard.jobs.end()) return false;
        change(it->second);
        it->second.updated_ms = now_ms();
        return true;
    }
    std::optional<std::string> open_job(Job fresh) override {
        const std::int64_t now = now_ms();
        const KeyView key = hash_of(fresh.id);
        JobShard& shard = job_shard(key);
        fresh.created_ms = fresh.created_ms ? fresh.created_ms : now;
        fresh.updated_ms = now;
        HashedKey id{fresh.id, key.hash};  // copied before `fresh` (and the text `key` views) is moved
        std::lock_guard lock(shard.mutex);
        // One lookup: try_emplace moves `fresh` in only when no job has its id.
        const auto [it, created] = shard.jobs.try_emplace(std::move(id), std::move(fresh));
        if (created) return std::nullopt;
        Job& job = it->second;
        std::optional<std::string> previous = job.status;
        reopen_job(job, fresh.owner);
        job.updated_ms = now;
        return previous;
    }
    std::optional<std::string> open_job_from(const JobOpening& opening) override {
        const std::int64_t now = now_ms();
        const KeyView key = hash_of(opening.id);
        JobShard& shard = job_shard(key);
        HashedKey id{std::string(opening.id), key.hash};
        std::lock_guard lock(shard.mutex);
        // One lookup; a new job is built in its place in the table, not built and moved in.
        const auto [it, created] = shard.jobs.try_emplace(std::move(id));
        Job& job = it->second;
        if (created) {
            opening.fill(job);
            job.created_ms = job.updated_ms = now;
            return std::nullopt;
        }
        std::optional<std::string> previous = job.status;
        reopen_job(job, std::string(opening.owner));
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
    // ending others rarely wait for each other. Listings lock every shard, in order. Like the
    // key/value half, an id is hashed once per operation (HashedKey).
    struct JobShard {
        std::mutex mutex;
        std::unordered_map<HashedKey, Job, HashedKeyHash, std::equal_to<>> jobs;  // list_jobs sorts its matches itself
    };
    static constexpr std::size_t kJobShards = 16;
    JobShard& job_shard(const KeyView& id) { return job_shards_[id.hash % kJobShards]; }
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
