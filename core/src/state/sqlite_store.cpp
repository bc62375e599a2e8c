// The "sqlite" backend: the embedded default. WAL mode; one connection guarded by a mutex
// (SQLite serialises writers anyway); the job record is stored whole as JSON, with the
// columns the admin API filters and sorts on next to it, indexed.
#include <sqlite3.h>

#include <filesystem>
#include <atomic>
#include <mutex>

#include <fmt/core.h>

#include "store.hpp"

namespace docpipe::core {

namespace {

class SqliteStore : public Store {
    // Declared first: member templates with a deduced return type must be defined before use.
    struct Reader {
        std::mutex mutex;
        sqlite3* db = nullptr;
    };
    // Runs `f(db)` on a free reader connection (round robin, waiting if all are busy).
    template <typename F>
    auto read(F&& f) {
        const std::size_t start = next_reader_.fetch_add(1) % readers_.size();
        for (std::size_t i = 0; i < readers_.size(); ++i) {
            Reader& r = *readers_[(start + i) % readers_.size()];
            std::unique_lock lock(r.mutex, std::try_to_lock);
            if (lock.owns_lock()) return f(r.db);
        }
        Reader& r = *readers_[start];
        std::lock_guard lock(r.mutex);
        return f(r.db);
    }


public:
    SqliteStore(const std::filesystem::path& path, Clock& clock) : path_(path), clock_(clock) {
        std::error_code ec;
        if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
            std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            db_ = nullptr;
            throw StoreError(fmt::format("sqlite: cannot open {}: {}", path.string(), why));
        }
        sqlite3_busy_timeout(db_, 5000);
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_ms INTEGER NOT NULL DEFAULT 0)");
        exec("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, email_id TEXT NOT NULL, "
             "created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, data TEXT NOT NULL)");
        exec("CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_ms, id)");
        exec("CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs(status, created_ms, id)");
        exec("CREATE INDEX IF NOT EXISTS jobs_email ON jobs(email_id)");
        // Per-status totals, kept with every job write, so listing a page does not count
        // 100,000 rows. Rebuilt at open: cheap, and it heals any drift.
        exec("CREATE TABLE IF NOT EXISTS job_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL)");
        exec("BEGIN IMMEDIATE; DELETE FROM job_counts; "
             "INSERT INTO job_counts SELECT status, count(*) FROM jobs GROUP BY status; COMMIT");
        // WAL lets readers run beside the writer: the admin API reads on these connections.
        for (int i = 0; i < 4; ++i) {
            auto reader = std::make_unique<Reader>();
            if (sqlite3_open_v2(path.c_str(), &reader->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK)
                throw StoreError(fmt::format("sqlite: cannot open a reader on {}: {}", path.string(), sqlite3_errmsg(reader->db)));
            sqlite3_busy_timeout(reader->db, 5000);
            readers_.push_back(std::move(reader));
        }
    }
    ~SqliteStore() override {
        for (auto& r : readers_) sqlite3_close(r->db);
        sqlite3_close(db_);
    }

    std::string backend() const override { return "sqlite"; }

    HealthReport probe() override {
        try {
            std::lock_guard lock(mutex_);
            Statement st(db_, "SELECT count(*) FROM sqlite_master");
            if (st.step() != SQLITE_ROW) throw StoreError(sqlite3_errmsg(db_));
            return {Health::Healthy, "sqlite " + path_.string()};
        } catch (const std::exception& e) {
            return {Health::Unavailable, e.what()};
        }
    }

    // ---- key/value ----

    std::optional<std::string> get(std::string_view key) override {
        return read([&](sqlite3* db) -> std::optional<std::string> {
            Statement st(db, "SELECT value FROM kv WHERE key=?1 AND (expires_ms=0 OR expires_ms>?2)");
            st.text(1, key);
            st.int64(2, now_ms());
            if (st.step() != SQLITE_ROW) return std::nullopt;
            return st.column_blob(0);
        });
    }
    void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
        std::lock_guard lock(mutex_);
        Statement st(db_, "INSERT OR REPLACE INTO kv(key,value,expires_ms) VALUES(?1,?2,?3)");
        st.text(1, key);
        st.blob(2, value);
        st.int64(3, expiry(ttl));
        st.done();
    }
    bool put_if_absent(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
        std::lock_guard lock(mutex_);
        // An expired row counts as absent and is replaced; a live row wins.
        Statement st(db_,
                     "INSERT INTO kv(key,value,expires_ms) VALUES(?1,?2,?3) ON CONFLICT(key) DO UPDATE SET "
                     "value=excluded.value, expires_ms=excluded.expires_ms WHERE kv.expires_ms<>0 AND kv.expires_ms<=?4");
        st.text(1, key);
        st.blob(2, value);
        st.int64(3, expiry(ttl));
        st.int64(4, now_ms());
        st.done();
        return sqlite3_changes(db_) > 0;
    }
    bool erase(std::string_view key) override {
        std::lock_guard lock(mutex_);
        Statement st(db_, "DELETE FROM kv WHERE key=?1 AND (expires_ms=0 OR expires_ms>?2)");
        st.text(1, key);
        st.int64(2, now_ms());
        st.done();
        return sqlite3_changes(db_) > 0;
    }
    std::vector<std::string> keys(std::string_view prefix, std::size_t limit) override {
        std::lock_guard lock(mutex_);
        // A range scan on the primary key: no LIKE, so '%' and '_' in a prefix mean themselves.
        Statement st(db_, "SELECT key FROM kv WHERE key>=?1 AND (expires_ms=0 OR expires_ms>?2) ORDER BY key");
        st.text(1, prefix);
        st.int64(2, now_ms());
        std::vector<std::string> out;
        while (out.size() < limit && st.step() == SQLITE_ROW) {
            std::string k = st.column_text(0);
            if (k.compare(0, prefix.size(), prefix) != 0) break;
            out.push_back(std::move(k));
        }
        return out;
    }

    // ---- jobs ----

    void put_job(const Job& job) override {
        std::lock_guard lock(mutex_);
        exec("BEGIN IMMEDIATE");  // the row and its status count change together
        try {
            write_job(job);
            exec("COMMIT");
        } catch (...) {
            exec("ROLLBACK");
            throw;
        }
    }
    std::optional<Job> get_job(const std::string& id) override {
        return read([&](sqlite3* db) { return read_job(db, id); });
    }
    std::optional<Job> update_job(const std::string& id, const std::function<void(Job&)>& change) override {
        std::lock_guard lock(mutex_);  // one connection: the mutex makes read-modify-write atomic here
        exec("BEGIN IMMEDIATE");        // ... and IMMEDIATE makes it atomic against other processes
        try {
            auto job = read_job(db_, id);
            if (job) {
                change(*job);
                write_job(*job);
            }
            exec("COMMIT");
            return job;
        } catch (...) {
            exec("ROLLBACK");
            throw;
        }
    }
    // One transaction instead of the default's two.
    std::optional<std::string> open_job(Job fresh) override {
        std::lock_guard lock(mutex_);
        exec("BEGIN IMMEDIATE");
        try {
            std::optional<std::string> previous;
            if (auto job = read_job(db_, fresh.id)) {
                previous = job->status;
                reopen_job(*job, fresh.owner);
                write_job(*job);
            } else {
                write_job(fresh);
            }
            exec("COMMIT");
            return previous;
        } catch (...) {
            exec("ROLLBACK");
            throw;
        }
    }
    JobPage list_jobs(const JobQuery& q) override {
        return read([&](sqlite3* db) { return list_jobs_on(db, q); });
    }

    JobPage list_jobs_on(sqlite3* db, const JobQuery& q) {
        std::string where = " WHERE 1=1";
        if (q.status) where += " AND status=?1";
        if (q.email_id) where += " AND email_id=?2";
        if (q.from_ms) where += " AND created_ms>=?3";
        if (q.to_ms) where += " AND created_ms<=?4";
        // No column of its own: a job's stages are few and this is an admin look-up.
        if (q.root_id) where += " AND json_extract(data,'$.root_id')=?7 AND id<>?7";
        auto bind = [&](Statement& st) {
            if (q.status) st.text(1, *q.status);
            if (q.email_id) st.text(2, *q.email_id);
            if (q.from_ms) st.int64(3, *q.from_ms);
            if (q.to_ms) st.int64(4, *q.to_ms);
            if (q.root_id) st.text(7, *q.root_id);
        };
        JobPage page;
        if (!q.email_id && !q.root_id && !q.from_ms && !q.to_ms) {
            Statement st(db, q.status ? "SELECT n FROM job_counts WHERE status=?1" : "SELECT total(n) FROM job_counts");
            if (q.status) st.text(1, *q.status);
            if (st.step() == SQLITE_ROW) page.total = static_cast<std::size_t>(sqlite3_column_int64(st.s, 0));
        } else {
            Statement st(db, ("SELECT count(*) FROM jobs" + where).c_str());
            bind(st);
            if (st.step() == SQLITE_ROW) page.total = static_cast<std::size_t>(sqlite3_column_int64(st.s, 0));
        }
        const char* order = q.newest_first ? " ORDER BY created_ms DESC, id DESC" : " ORDER BY created_ms ASC, id ASC";
        Statement st(db, ("SELECT data FROM jobs" + where + order + " LIMIT ?5 OFFSET ?6").c_str());
        bind(st);
        st.int64(5, static_cast<std::int64_t>(q.limit));
        st.int64(6, static_cast<std::int64_t>(q.offset));
        while (st.step() == SQLITE_ROW) {
            if (q.raw) page.raw.push_back(st.column_text(0));
            else page.jobs.push_back(Job::from_json(nlohmann::json::parse(st.column_text(0))));
        }
        return page;
    }
    std::map<std::string, std::size_t> count_jobs_by_status() override {
        return read([&](sqlite3* db) {
            Statement st(db, "SELECT status, n FROM job_counts WHERE n>0");
            std::map<std::string, std::size_t> out;
            while (st.step() == SQLITE_ROW) out[st.column_text(0)] = static_cast<std::size_t>(sqlite3_column_int64(st.s, 1));
            return out;
        });
    }

    // In SQL: the admin dashboard asks for a month of jobs, which must not mean parsing each.
    JobAggregate aggregate_jobs(std::int64_t from_ms, std::int64_t to_ms) override {
        return read([&](sqlite3* db) { return aggregate_on(db, from_ms, to_ms); });
    }

    JobAggregate aggregate_on(sqlite3* db, std::int64_t from_ms, std::int64_t to_ms) {
        JobAggregate a;
        const char* range = " FROM jobs WHERE created_ms>=?1 AND created_ms<=?2";
        auto run = [&](const std::string& sql, const std::function<void(Statement&)>& row) {
            Statement st(db, sql.c_str());
            st.int64(1, from_ms);
            st.int64(2, to_ms);
            while (st.step() == SQLITE_ROW) row(st);
        };
        run(std::string("SELECT status, count(*), total(updated_ms-created_ms)") + range + " GROUP BY status", [&](Statement& st) {
            const std::string status = st.column_text(0);
            const auto n = static_cast<std::size_t>(sqlite3_column_int64(st.s, 1));
            const double ms = sqlite3_column_double(st.s, 2);
            a.total += n;
            a.by_status[status] = n;
            if (is_terminal_status(status)) {
                a.processing_ms_sum += ms;
                a.processing_count += n;
            }
            if (status == "submitted") {
                a.submission_ms_sum += ms;
                a.submission_count += n;
            }
        });
        run(std::string("SELECT min(9, CAST(c*10 AS INTEGER)), count(*), total(c) FROM (SELECT json_extract(data,'$.confidence') AS c") +
                range + ") WHERE c>0 GROUP BY 1",
            [&](Statement& st) {
                const auto n = static_cast<std::size_t>(sqlite3_column_int64(st.s, 1));
                a.confidence_histogram[static_cast<std::size_t>(sqlite3_column_int64(st.s, 0))] += n;
                a.confidence_count += n;
                a.confidence_sum += sqlite3_column_double(st.s, 2);
            });
        run(std::string("SELECT count(*)") + range + " AND status='submitted' AND json_extract(data,'$.references.approved_at') IS NOT NULL",
            [&](Statement& st) { a.submitted_after_approval = static_cast<std::size_t>(sqlite3_column_int64(st.s, 0)); });
        run(std::string("SELECT (created_ms/3600000)%24, count(*)") + range + " GROUP BY 1", [&](Statement& st) {
            a.by_hour[static_cast<std::size_t>(sqlite3_column_int64(st.s, 0))] = static_cast<std::size_t>(sqlite3_column_int64(st.s, 1));
        });
        run(std::string("SELECT p, count(*) FROM (SELECT json_extract(data,'$.fields.provider_name.value') AS p") + range +
                ") WHERE p IS NOT NULL AND p<>'' GROUP BY p",
            [&](Statement& st) { a.providers[st.column_text(0)] = static_cast<std::size_t>(sqlite3_column_int64(st.s, 1)); });
        return a;
    }

private:
    struct Statement {
        Statement(sqlite3* db, const char* sql) : db(db) {
            if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
                throw StoreError(std::string("sqlite: prepare failed: ") + sqlite3_errmsg(db));
        }
        ~Statement() { sqlite3_finalize(s); }
        void text(int i, std::string_view v) { sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
        void blob(int i, std::string_view v) { sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
        void int64(int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
        int step() {
            int rc = sqlite3_step(s);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw StoreError(std::string("sqlite: ") + sqlite3_errmsg(db));
            return rc;
        }
        void done() { step(); }
        std::string column_text(int i) {
            auto p = sqlite3_column_text(s, i);
            return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : "";
        }
        std::string column_blob(int i) {
            auto p = static_cast<const char*>(sqlite3_column_blob(s, i));
            return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : "";
        }
        sqlite3* db;
        sqlite3_stmt* s = nullptr;
    };

    void exec(const char* sql) {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string why = err ? err : "?";
            sqlite3_free(err);
            throw StoreError(std::string("sqlite: ") + sql + ": " + why);
        }
    }
    static std::optional<Job> read_job(sqlite3* db, const std::string& id) {
        Statement st(db, "SELECT data FROM jobs WHERE id=?1");
        st.text(1, id);
        if (st.step() != SQLITE_ROW) return std::nullopt;
        return Job::from_json(nlohmann::json::parse(st.column_text(0)));
    }
    // Inside a transaction on db_: replaces the row and moves the status count.
    void write_job(Job job) {
        job.updated_ms = now_ms();
        if (job.created_ms == 0) job.created_ms = job.updated_ms;
        std::optional<std::string> old_status;
        {
            Statement st(db_, "SELECT status FROM jobs WHERE id=?1");
            st.text(1, job.id);
            if (st.step() == SQLITE_ROW) old_status = st.column_text(0);
        }
        if (old_status != job.status) {
            if (old_status) {
                Statement dec(db_, "UPDATE job_counts SET n=n-1 WHERE status=?1");
                dec.text(1, *old_status);
                dec.done();
            }
            Statement inc(db_, "INSERT INTO job_counts(status,n) VALUES(?1,1) ON CONFLICT(status) DO UPDATE SET n=n+1");
            inc.text(1, job.status);
            inc.done();
        }
        Statement st(db_, "INSERT OR REPLACE INTO jobs(id,status,email_id,created_ms,updated_ms,data) VALUES(?1,?2,?3,?4,?5,?6)");
        st.text(1, job.id);
        st.text(2, job.status);
        st.text(3, job.email_id);
        st.int64(4, job.created_ms);
        st.int64(5, job.updated_ms);
        st.text(6, job.to_json_text());
        st.done();
    }
    std::int64_t now_ms() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
    }
    std::int64_t expiry(std::chrono::seconds ttl) const { return ttl.count() > 0 ? now_ms() + ttl.count() * 1000 : 0; }

    std::filesystem::path path_;
    Clock& clock_;
    std::mutex mutex_;  // guards db_, the one writer connection
    sqlite3* db_ = nullptr;
    std::vector<std::unique_ptr<Reader>> readers_;
    std::atomic<std::size_t> next_reader_{0};
};

}  // namespace

std::unique_ptr<Store> make_sqlite_store(const std::string& path, Clock& clock) {
    return std::make_unique<SqliteStore>(path, clock);
}

}  // namespace docpipe::core
