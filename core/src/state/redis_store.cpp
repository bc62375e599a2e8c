// The "redis" backend (hiredis 0.14): shared between runtime instances. One connection,
// guarded by a mutex, opened lazily and dropped on any I/O error so the next call
// reconnects — a Redis restart costs the calls made while it is down, nothing more.
//
// Layout (prefix "docpipe:"): kv:<key> strings with PX expiry; job:<id> the job JSON;
// zsets jobs, jobs:status:<status>, jobs:email:<email_id>, jobs:root:<root job id> (later
// stages only) scored by created_ms.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <mutex>
#include <regex>

#include <fmt/core.h>

#include "docpipe/no_sigpipe.hpp"
#include "store.hpp"

namespace docpipe::core {

namespace {

struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct RedisUrl {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string password;
    int db = 0;
};

RedisUrl parse_url(const std::string& url) {
    static const std::regex kUrl(R"(redis://(?::([^@]*)@)?([^:/]+)(?::(\d{1,5}))?(?:/(\d{1,6}))?/?)");
    std::smatch m;
    if (!std::regex_match(url, m, kUrl))
        throw StoreError(url.rfind("redis://", 0) == 0 ? "redis: cannot parse url (expected redis://[:password@]host:port/db)"
                                                       : "redis: cannot parse url: it must start with redis:// "
                                                         "(redis://[:password@]host:port/db)");
    RedisUrl u;
    u.password = m[1].str();
    u.host = m[2].str();
    if (m[3].matched) u.port = std::stoi(m[3].str());
    if (m[4].matched) u.db = std::stoi(m[4].str());
    if (u.port < 1 || u.port > 65535) throw StoreError(fmt::format("redis: the url's port {} is not 1-65535", u.port));
    return u;
}

class RedisStore : public Store {
public:
    RedisStore(const std::string& url, Clock& clock) : url_(parse_url(url)), clock_(clock) {}
    ~RedisStore() override {
        if (ctx_) redisFree(ctx_);
    }

    std::string backend() const override { return "redis"; }

    HealthReport probe() override {
        try {
            Reply r = command({"PING"});
            if (r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG")
                return {Health::Healthy, fmt::format("redis {}:{}/{}", url_.host, url_.port, url_.db)};
            return {Health::Degraded, "unexpected PING reply"};
        } catch (const std::exception& e) {
            return {Health::Unavailable, e.what()};
        }
    }

    // ---- key/value ----

    std::optional<std::string> get(std::string_view key) override {
        Reply r = command({"GET", kv(key)});
        if (r->type == REDIS_REPLY_NIL) return std::nullopt;
        return std::string(r->str, r->len);
    }
    void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
        if (ttl.count() > 0) command({"SET", kv(key), std::string(value), "PX", std::to_string(ttl.count() * 1000)});
        else command({"SET", kv(key), std::string(value)});
    }
    bool put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
        Reply r = ttl.count() > 0 ? command({"SET", kv(key), std::string(value), "NX", "PX", std::to_string(ttl.count() * 1000)})
                                  : command({"SET", kv(key), std::string(value), "NX"});
        return r->type == REDIS_REPLY_STATUS;  // OK; NIL when the key exists
    }
    bool erase(std::string_view key) override { return command({"DEL", kv(key)})->integer > 0; }
    std::vector<std::string> keys(std::string_view prefix, std::size_t limit) override {
        // SCAN with a glob: escape the glob's own metacharacters in the prefix.
        std::string pattern = kv("");
        for (char c : prefix) {
            if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern += '\\';
            pattern += c;
        }
        pattern += '*';
        std::vector<std::string> out;
        std::string cursor = "0";
        do {
            Reply r = command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
            cursor.assign(r->element[0]->str, r->element[0]->len);
            for (std::size_t i = 0; i < r->element[1]->elements; ++i)
                out.emplace_back(r->element[1]->element[i]->str + kv("").size(), r->element[1]->element[i]->len - kv("").size());
        } while (cursor != "0");
        std::sort(out.begin(), out.end());
        if (out.size() > limit) out.resize(limit);
        return out;
    }

    // ---- jobs ----

    void put_job(const Job& job) override {
        std::lock_guard lock(mutex_);
        for (int attempt = 0; attempt < 100; ++attempt) {
            command_locked({"WATCH", job_key(job.id)});
            Reply old = command_locked({"GET", job_key(job.id)});
            std::optional<Job> previous;
            if (old->type == REDIS_REPLY_STRING) previous = Job::from_json(nlohmann::json::parse(std::string(old->str, old->len)));
            if (write_job_locked(job, previous)) return;
        }
        throw StoreError("redis: put_job kept conflicting with other writers");
    }
    std::optional<Job> get_job(const std::string& id) override {
        Reply r = command({"GET", job_key(id)});
        if (r->type != REDIS_REPLY_STRING) return std::nullopt;
        return Job::from_json(nlohmann::json::parse(std::string(r->str, r->len)));
    }
    std::optional<Job> update_job(const std::string& id, const std::function<void(Job&)>& change) override {
        std::lock_guard lock(mutex_);
        // Optimistic concurrency: WATCH the record, change it, EXEC; EXEC returns nil when
        // another client wrote in between, and we start over from a fresh read.
        for (int attempt = 0; attempt < 100; ++attempt) {
            command_locked({"WATCH", job_key(id)});
            Reply old = command_locked({"GET", job_key(id)});
            if (old->type != REDIS_REPLY_STRING) {
                command_locked({"UNWATCH"});
                return std::nullopt;
            }
            Job previous = Job::from_json(nlohmann::json::parse(std::string(old->str, old->len)));
            Job job = previous;
            change(job);
            if (write_job_locked(job, previous)) return job;
        }
        throw StoreError("redis: update_job kept conflicting with other writers");
    }
    JobPage list_jobs(const JobQuery& q) override {
        std::string index = "docpipe:jobs";
        bool filter_status_in_memory = false;
        if (q.email_id) {
            index = "docpipe:jobs:email:" + *q.email_id;
            filter_status_in_memory = q.status.has_value();
        } else if (q.root_id) {
            index = "docpipe:jobs:root:" + *q.root_id;  // holds only jobs of later stages
            filter_status_in_memory = q.status.has_value();
        } else if (q.status) {
            index = "docpipe:jobs:status:" + *q.status;
        }
        const std::string lo = q.from_ms ? std::to_string(*q.from_ms) : "-inf";
        const std::string hi = q.to_ms ? std::to_string(*q.to_ms) : "+inf";
        JobPage page;
        std::vector<std::string> ids;
        if (!filter_status_in_memory) {
            page.total = static_cast<std::size_t>(command({"ZCOUNT", index, lo, hi})->integer);
            Reply r = q.newest_first
                          ? command({"ZREVRANGEBYSCORE", index, hi, lo, "LIMIT", std::to_string(q.offset), std::to_string(q.limit)})
                          : command({"ZRANGEBYSCORE", index, lo, hi, "LIMIT", std::to_string(q.offset), std::to_string(q.limit)});
            for (std::size_t i = 0; i < r->elements; ++i) ids.emplace_back(r->element[i]->str, r->element[i]->len);
            if (q.raw) page.raw = fetch_raw(ids);
            else page.jobs = fetch(ids);
            return page;
        }
        // email (or root) + status: one email has few jobs; filter them here.
        Reply r = q.newest_first ? command({"ZREVRANGEBYSCORE", index, hi, lo}) : command({"ZRANGEBYSCORE", index, lo, hi});
        for (std::size_t i = 0; i < r->elements; ++i) ids.emplace_back(r->element[i]->str, r->element[i]->len);
        std::vector<Job> all = fetch(ids);
        std::vector<Job> matching;
        for (auto& j : all)
            if (j.status == *q.status) matching.push_back(std::move(j));
        page.total = matching.size();
        for (std::size_t i = q.offset; i < matching.size() && i < q.offset + q.limit; ++i) {
            if (q.raw) page.raw.push_back(matching[i].to_json_text());
            else page.jobs.push_back(matching[i]);
        }
        return page;
    }
    std::map<std::string, std::size_t> count_jobs_by_status() override {
        std::map<std::string, std::size_t> out;
        for (const char* s : kJobStatuses) {
            auto n = command({"ZCARD", std::string("docpipe:jobs:status:") + s})->integer;
            if (n > 0) out[s] = static_cast<std::size_t>(n);
        }
        return out;
    }

private:
    static std::string kv(std::string_view key) { return "docpipe:kv:" + std::string(key); }
    static std::string job_key(const std::string& id) { return "docpipe:job:" + id; }

    std::vector<std::string> fetch_raw(const std::vector<std::string>& ids) {
        std::vector<std::string> out;
        if (ids.empty()) return out;
        std::vector<std::string> args{"MGET"};
        for (const auto& id : ids) args.push_back(job_key(id));
        Reply r = command(args);
        for (std::size_t i = 0; i < r->elements; ++i)
            if (r->element[i]->type == REDIS_REPLY_STRING) out.emplace_back(r->element[i]->str, r->element[i]->len);
        return out;
    }

    std::vector<Job> fetch(const std::vector<std::string>& ids) {
        std::vector<Job> jobs;
        for (const auto& text : fetch_raw(ids)) jobs.push_back(Job::from_json(nlohmann::json::parse(text)));
        return jobs;
    }

    // After WATCH: writes the record and its index entries in one MULTI/EXEC. False when
    // EXEC was aborted because the watched key changed.
    bool write_job_locked(Job job, const std::optional<Job>& previous) {
        job.updated_ms = now_ms();
        if (job.created_ms == 0) job.created_ms = previous ? previous->created_ms : job.updated_ms;
        const std::string score = std::to_string(job.created_ms);
        command_locked({"MULTI"});
        command_locked({"SET", job_key(job.id), job.to_json_text()});
        command_locked({"ZADD", "docpipe:jobs", score, job.id});
        if (previous && previous->status != job.status) command_locked({"ZREM", "docpipe:jobs:status:" + previous->status, job.id});
        command_locked({"ZADD", "docpipe:jobs:status:" + job.status, score, job.id});
        if (previous && previous->email_id != job.email_id && !previous->email_id.empty())
            command_locked({"ZREM", "docpipe:jobs:email:" + previous->email_id, job.id});
        if (!job.email_id.empty()) command_locked({"ZADD", "docpipe:jobs:email:" + job.email_id, score, job.id});
        // A later stage's job (its documents crossed a stream): found from its root's job.
        if (!job.root_id.empty() && job.root_id != job.id) command_locked({"ZADD", "docpipe:jobs:root:" + job.root_id, score, job.id});
        Reply r = command_locked({"EXEC"});
        return r->type != REDIS_REPLY_NIL;
    }

    Reply command(const std::vector<std::string>& args) {
        std::lock_guard lock(mutex_);
        return command_locked(args);
    }

    Reply command_locked(const std::vector<std::string>& args) {
        const bool reused = ctx_ != nullptr;
        try {
            return send_locked(args);
        } catch (const ConnectionLost&) {
            // A connection that sat idle across a Redis restart fails once; try a fresh one —
            // but never inside WATCH/MULTI, where a replay on a new connection would run a
            // queued write outside its transaction.
            const bool transactional = in_transaction_;
            in_transaction_ = false;
            if (!reused || transactional) throw;
            return send_locked(args);
        }
    }

    struct ConnectionLost : StoreError {
        using StoreError::StoreError;
    };

    Reply send_locked(const std::vector<std::string>& args) {
        connect_locked();
        if (args[0] == "WATCH") in_transaction_ = true;
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        ScopedNoSigpipe no_sigpipe;  // hiredis writes with write(2): a restarted Redis must be an error, not a signal
        auto* raw = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
        if (!raw) {
            std::string why = ctx_->errstr;
            drop_locked();
            throw ConnectionLost(fmt::format("redis {}:{}: {} failed: {}", url_.host, url_.port, args[0], why));
        }
        if (args[0] == "EXEC" || args[0] == "UNWATCH") in_transaction_ = false;
        Reply reply(raw);
        if (reply->type == REDIS_REPLY_ERROR)
            throw StoreError(fmt::format("redis: {} answered: {}", args[0], std::string(reply->str, reply->len)));
        return reply;
    }

    void connect_locked() {
        if (ctx_) return;
        timeval connect_timeout{2, 0};
        redisContext* c = redisConnectWithTimeout(url_.host.c_str(), url_.port, connect_timeout);
        if (!c || c->err) {
            std::string why = c ? c->errstr : "out of memory";
            if (c) redisFree(c);
            throw StoreError(fmt::format("redis {}:{}: cannot connect: {}", url_.host, url_.port, why));
        }
        timeval command_timeout{5, 0};
        redisSetTimeout(c, command_timeout);
        ctx_ = c;
        // A connection that could not log in or select the URL's database must not be kept:
        // it would read and write database 0, where another pipeline's ledgers and dedup
        // keys may live ("SELECT 99: ERR DB index is out of range" went on in db 0).
        try {
            if (!url_.password.empty()) command_locked({"AUTH", url_.password});
            if (url_.db != 0) command_locked({"SELECT", std::to_string(url_.db)});
        } catch (const StoreError& e) {
            drop_locked();
            const bool select_failed = std::string_view(e.what()).find("SELECT") != std::string_view::npos;
            throw StoreError(fmt::format("redis {}:{}: {} ({}); nothing is read or written until it is fixed", url_.host, url_.port,
                                         e.what(),
                                         select_failed ? fmt::format("the database number in state.url, {}, is not one this server has: "
                                                                     "check its `databases` setting or the URL", url_.db)
                                                       : std::string("check the password in state.url")));
        }
    }

    void drop_locked() {
        if (ctx_) redisFree(ctx_);
        ctx_ = nullptr;
    }

    std::int64_t now_ms() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
    }

    RedisUrl url_;
    Clock& clock_;
    std::recursive_mutex mutex_;  // recursive: connect_locked() issues AUTH/SELECT through command_locked()
    redisContext* ctx_ = nullptr;
    bool in_transaction_ = false;  // between WATCH and EXEC/UNWATCH
};

}  // namespace

std::unique_ptr<Store> make_redis_store(const std::string& url, Clock& clock) { return std::make_unique<RedisStore>(url, clock); }

std::string redis_url_problem(const std::string& url) {
    try {
        parse_url(url);
        return {};
    } catch (const StoreError& e) {
        return e.what();
    }
}

}  // namespace docpipe::core
