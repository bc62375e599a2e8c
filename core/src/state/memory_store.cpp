// The "memory" backend: for tests and throwaway runs; nothing survives the process.
#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <optional>
#include <string_view>
#include <unordered_map>
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
// Each key is hashed once per operation: the hash picks the shard and is kept in the entry
// (Record), so the shard's table neither hashes it again to look it up nor to insert it.
// A shard is a chained table of its own (Shard) rather than a std::unordered_set, so that an
// entry is allocated and written before the shard's lock is taken and freed after it is
// released: under the lock a put only finds the key's chain and links the entry in (and,
// each time a shard's entries double, relinks them into twice the buckets). The
// ledger's puts are the most contended lock of a run with the ledger on, and an allocation
// (a page fault, now and then) under it made every other sink of that shard wait.
// Threading: every method may be called from any thread; a shard's table is guarded by its
// mutex, keys() takes the shard locks one at a time.
class HashedKeyValues {
public:
    explicit HashedKeyValues(Clock& clock) : clock_(clock) {}
    HashedKeyValues(const HashedKeyValues&) = delete;
    HashedKeyValues& operator=(const HashedKeyValues&) = delete;

    std::optional<std::string> get(std::string_view key) {
        const KeyView hashed = hash_of(key);
        Shard& shard = shard_of(hashed);
        std::lock_guard lock(shard.mutex);
        const Record* r = *shard.link_of(hashed);
        if (!r || !live(*r)) return std::nullopt;
        return std::string(r->value());
    }
    void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
        const KeyView hashed = hash_of(key);
        RecordPtr fresh = Record::make(hashed, value, expiry(ttl));  // outside the lock
        Shard& shard = shard_of(hashed);
        RecordPtr replaced;  // freed after the lock is released
        std::lock_guard lock(shard.mutex);
        replaced = shard.put(std::move(fresh));
    }
    bool put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
        const KeyView hashed = hash_of(key);
        RecordPtr fresh = Record::make(hashed, value, expiry(ttl));  // outside the lock; freed after it when not taken
        Shard& shard = shard_of(hashed);
        RecordPtr replaced;
        std::lock_guard lock(shard.mutex);
        if (const Record* existing = *shard.link_of(hashed); existing && live(*existing)) return false;
        replaced = shard.put(std::move(fresh));  // new, or in place of an expired entry
        return true;
    }
    bool erase(std::string_view key) {
        const KeyView hashed = hash_of(key);
        Shard& shard = shard_of(hashed);
        RecordPtr removed;  // freed after the lock is released
        std::lock_guard lock(shard.mutex);
        removed = shard.remove(hashed);
        return removed && live(*removed);
    }
    std::vector<std::string> keys(std::string_view prefix, std::size_t limit) {
        std::vector<std::string> out;
        for (auto& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            for (const Record* chain : shard.buckets)
                for (const Record* r = chain; r; r = r->next)
                    if (r->key().substr(0, prefix.size()) == prefix && live(*r)) out.emplace_back(r->key());
        }
        std::sort(out.begin(), out.end());  // the order every backend lists keys in
        if (out.size() > limit) out.resize(limit);
        return out;
    }

private:
    // The shard is picked by the hash's low bits, a bucket within it by the bits above them
    // (the low ones are the same for every key of a shard).
    static constexpr unsigned kShardBits = 4;
    static constexpr std::size_t kShards = std::size_t{1} << kShardBits;

    // One entry: a header followed by its key and value in the same allocation, sized to them
    // (a ledger entry is one small block). Never changed once linked: a put of an existing key
    // links a new entry in its place.
    struct Record;
    struct FreeRecord {
        void operator()(Record* r) const noexcept { ::operator delete(static_cast<void*>(r)); }
    };
    using RecordPtr = std::unique_ptr<Record, FreeRecord>;
    struct Record {
        Record* next;  // the rest of its bucket's chain; owned by the shard while linked
        std::size_t hash;
        std::chrono::system_clock::time_point expires;
        std::size_t key_size, value_size;

        static RecordPtr make(const KeyView& key, std::string_view value, std::chrono::system_clock::time_point expires) {
            void* memory = ::operator new(sizeof(Record) + key.text.size() + value.size());
            RecordPtr r(new (memory) Record{nullptr, key.hash, expires, key.text.size(), value.size()});
            char* chars = r->chars();
            if (!key.text.empty()) std::memcpy(chars, key.text.data(), key.text.size());
            if (!value.empty()) std::memcpy(chars + key.text.size(), value.data(), value.size());
            return r;
        }
        char* chars() { return reinterpret_cast<char*>(this + 1); }
        const char* chars() const { return reinterpret_cast<const char*>(this + 1); }
        std::string_view key() const { return std::string_view(chars(), key_size); }
        std::string_view value() const { return std::string_view(chars() + key_size, value_size); }
        bool is(const KeyView& k) const { return hash == k.hash && key() == k.text; }
    };
    static_assert(std::is_trivially_destructible_v<Record>, "FreeRecord frees a Record's memory without destroying it");

    // A chained hash table, power-of-two buckets, at most one entry per bucket on average.
    // Owns its linked entries. Caller holds `mutex` for everything but construction.
    struct Shard {
        std::mutex mutex;
        std::vector<Record*> buckets;  // chains; empty until the first entry
        std::size_t size = 0;

        Shard() = default;
        Shard(const Shard&) = delete;
        Shard& operator=(const Shard&) = delete;
        ~Shard() {
            for (Record* chain : buckets)
                while (chain) FreeRecord{}(std::exchange(chain, chain->next));
        }
        // The link that points at `key`'s entry, or the null link at the end of its chain.
        Record** link_of(const KeyView& key) {
            if (buckets.empty()) return &no_chain_;
            Record** link = &buckets[bucket_of(key.hash)];
            while (*link && !(*link)->is(key)) link = &(*link)->next;
            return link;
        }
        // Links `fresh` in, in place of the entry with its key if any, which it returns.
        RecordPtr put(RecordPtr fresh) {
            const KeyView key{fresh->key(), fresh->hash};
            if (buckets.empty() || size + 1 > buckets.size()) grow();
            Record** link = link_of(key);
            RecordPtr old(*link);
            fresh->next = old ? old->next : nullptr;
            *link = fresh.release();
            if (old) old->next = nullptr;
            else ++size;
            return old;
        }
        // Unlinks the entry with `key` and returns it (null when there is none).
        RecordPtr remove(const KeyView& key) {
            Record** link = link_of(key);
            RecordPtr old(*link);
            if (!old) return old;
            *link = old->next;
            old->next = nullptr;
            --size;
            return old;
        }
        // Doubles the buckets and relinks every entry (no entry moves or is copied).
        void grow() {
            std::vector<Record*> wider(buckets.empty() ? 16 : buckets.size() * 2, nullptr);
            for (Record* chain : buckets)
                while (chain) {
                    Record* r = std::exchange(chain, chain->next);
                    Record*& head = wider[(r->hash >> kShardBits) & (wider.size() - 1)];
                    r->next = head;
                    head = r;
                }
            buckets.swap(wider);
        }

    private:
        std::size_t bucket_of(std::size_t hash) const { return (hash >> kShardBits) & (buckets.size() - 1); }
        Record* no_chain_ = nullptr;  // what link_of() points at while there are no buckets
    };
    Shard& shard_of(const KeyView& key) { return shards_[key.hash & (kShards - 1)]; }
    bool live(const Record& r) const {
        return r.expires == std::chrono::system_clock::time_point::max() || r.expires > clock_.now();
    }
    std::chrono::system_clock::time_point expiry(std::chrono::seconds ttl) const {
        return ttl.count() > 0 ? clock_.now() + ttl : std::chrono::system_clock::time_point::max();
    }

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
