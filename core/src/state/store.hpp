// The runtime's state store: one interface, two real backends (SQLite, embedded default;
// Redis, shared between runtime instances). Holds the plugins' key/value state (dedup keys,
// checkpoints, sink ledgers, dead letters) and the job records behind the admin API.
//
// Contract:
// - Thread-safe: every method may be called from any thread.
// - Backend failures throw StoreError with the backend and the reason; a Redis store
//   reconnects on the next call after its server comes back, so callers just retry.
// - probe() performs a real round trip (Redis PING, SQLite query), connecting if needed.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "docpipe/component.hpp"
#include "docpipe/context.hpp"

namespace docpipe::core {

class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Job statuses, from intake to a terminal state.
// `partial`: some attachments delivered or in review, others failed (each failed one is a
// dead letter of its own); `outcomes` on the job says which.
inline constexpr const char* kJobStatuses[] = {"received", "processing", "extracted", "submitted", "review",
                                               "approved", "rejected",   "failed",    "skipped",   "partial"};
bool is_job_status(std::string_view status);

// Writes a job's outcomes and timeline (Job::set_delivery) as JSON array text on demand.
// Immutable once made: copies of a job share it, and any thread may write it out.
class DeliveryRecord {
public:
    virtual ~DeliveryRecord() = default;
    virtual void append_outcomes(std::string& out) const = 0;  // appends `[...]`
    virtual void append_trace(std::string& out) const = 0;     // appends `[...]`
};

// Immutable text that copies share instead of each allocating its own: a job's pipeline
// hash, the same for every job a runtime opens and longer than a std::string holds inline
// (a job is opened for every source document on the hot path). Reads as a const std::string&.
class SharedText {
public:
    SharedText() = default;
    SharedText(const char* text) : SharedText(std::string_view(text)) {}
    SharedText(std::string_view text) {
        if (!text.empty()) text_ = std::make_shared<const std::string>(text);
    }
    SharedText(const std::string& text) : SharedText(std::string_view(text)) {}
    const std::string& str() const { return text_ ? *text_ : empty(); }
    operator const std::string&() const { return str(); }
    bool empty_text() const { return !text_; }
    friend bool operator==(const SharedText& a, std::string_view b) { return a.str() == b; }

private:
    static const std::string& empty() {
        static const std::string none;
        return none;
    }
    std::shared_ptr<const std::string> text_;  // null: empty
};

struct Job {
    std::string id;         // document id
    std::string root_id;    // the source document it came from (the email)
    std::string status = "received";
    std::string source;     // source node name
    std::string filename;
    std::string email_id;   // Message-ID when the source is an email
    // fields and references are null until something is set, and a null one means an empty
    // object: to_json() and to_json_text() write {} for it (use or_empty() when handing one
    // out elsewhere), and find/contains/items/operator[] treat it as one. Most jobs never get
    // claim fields, and an empty object would cost an allocation per job on the hot path.
    nlohmann::json fields;      // per-field value/confidence/provenance
    double confidence = 0;
    std::string confidence_level;                          // high|medium|low
    nlohmann::json references; // ncb_reference, sheets_row, drive_file_id
    int attempts = 0;
    std::string last_error;
    SharedText pipeline_hash;
    std::string duplicate_of;
    // How each descendant (attachment, claim) ended: [{doc_id, name, status, node, reason}],
    // status one of submitted|review|skipped|failed. The job's status is derived from these.
    // As JSON array text (outcomes_text()), parsed as a tree only by the admin API and the
    // review actions (outcomes()).
    nlohmann::json outcomes() const;  // outcomes_text() parsed; an empty array if it is not one
    std::string outcomes_text() const;
    void set_outcomes_text(std::string text);
    // The timeline of the latest delivery: one entry per node call on each descendant
    // [{node, component, doc_id, start_ms, ms, attempt, outcome, detail}], in order, as JSON
    // array text; read only by the admin API (to_json() parses it).
    std::string trace_text() const;
    void set_trace_text(std::string text);
    // A delivery's outcomes and timeline as the runtime recorded them, written as text only
    // when they are read (the accessors above) or stored as text (SQLite, Redis): a job ends
    // for every source document on the hot path, and the memory store never needs the text.
    // Replaces both texts; a set_*_text() afterwards writes the other one out first.
    void set_delivery(std::shared_ptr<const DeliveryRecord> delivery);
    std::string owner;      // host:pid of the runtime that last took it (for reconciliation)
    std::int64_t created_ms = 0, updated_ms = 0;           // Unix epoch milliseconds

    nlohmann::json to_json() const;
    // `member` (fields or references) as the API shows it: an empty object while null.
    static const nlohmann::json& or_empty(const nlohmann::json& member);
    // The same as docpipe::json_text(to_json()), without parsing the timeline: what the stores write.
    std::string to_json_text() const;
    static Job from_json(const nlohmann::json& j);

private:
    // The texts, unless `delivery_` holds them. Copies of a job share `delivery_` (immutable).
    std::string outcomes_json_ = "[]";
    std::string trace_json_ = "[]";
    std::shared_ptr<const DeliveryRecord> delivery_;
};

// A new job as a source document is taken (Store::open_job_from): status processing, one
// attempt. The views must stay valid for the call.
struct JobOpening {
    std::string_view id, root_id, source, filename, email_id, owner;
    SharedText pipeline_hash;  // shared with the new job, not copied

    // Sets these on `job` (a default Job: the rest stays as it is).
    void fill(Job& job) const;
    Job job() const;
};

struct JobQuery {
    // Initialised explicitly so designated initialisers may leave any of them out.
    std::optional<std::string> status = std::nullopt;
    std::optional<std::int64_t> from_ms = std::nullopt, to_ms = std::nullopt;  // created_ms range, inclusive
    std::optional<std::string> email_id = std::nullopt;
    // Jobs whose root_id is this and whose id is not: the later stages of a job whose
    // documents crossed a stream (email_id and root_id are not combined).
    std::optional<std::string> root_id = std::nullopt;
    std::size_t limit = 50;
    std::size_t offset = 0;
    bool newest_first = true;
    // Return the stored JSON text of each job in JobPage::raw instead of parsed Jobs: the
    // admin API splices it into its answer without a parse/serialise round trip.
    bool raw = false;
};

struct JobPage {
    std::vector<Job> jobs;
    std::vector<std::string> raw;  // when JobQuery::raw: each job as a JSON object text
    std::size_t total = 0;  // matches before limit/offset
};

// Numbers behind the stats endpoints, over jobs created in a time range.
struct JobAggregate {
    std::size_t total = 0;
    std::map<std::string, std::size_t> by_status;
    double confidence_sum = 0;  // over jobs with a confidence > 0
    std::size_t confidence_count = 0;
    double processing_ms_sum = 0;  // updated - created, over jobs in a terminal status
    std::size_t processing_count = 0;
    double submission_ms_sum = 0;  // the same, over submitted jobs only
    std::size_t submission_count = 0;
    // Of the submitted jobs, those a reviewer approved first (references.approved_at): the
    // dashboard counts them as approved, not as submitted without a person.
    std::size_t submitted_after_approval = 0;
    std::array<std::size_t, 24> by_hour{};               // by UTC hour of creation
    std::array<std::size_t, 10> confidence_histogram{};  // [0,0.1), ..., [0.9,1.0]
    std::map<std::string, std::size_t> providers;        // fields.provider_name.value
};

bool is_terminal_status(std::string_view status);

// Copies a claim document's results (docpipe/claim.hpp layout: fields.claim, confidence,
// confidence_level, and the email's message_id) onto its job. False, and nothing changed,
// when the document carries no claim.
bool record_claim_on_job(const Document& doc, Job& job);

class Store : public StateStore {
public:
    virtual std::string backend() const = 0;
    virtual HealthReport probe() = 0;

    // Inserts or replaces the whole record (updated_ms is set by the store).
    virtual void put_job(const Job& job) = 0;
    virtual std::optional<Job> get_job(const std::string& id) = 0;
    // Atomic read-modify-write; `change` may run more than once (optimistic retry), so it
    // must only modify the job. Returns the stored result, or nullopt if no such job.
    virtual std::optional<Job> update_job(const std::string& id, const std::function<void(Job&)>& change) = 0;
    // update_job for callers that do not need the result back: true when the job exists.
    // Default: update_job; a backend may skip the copy.
    virtual bool modify_job(const std::string& id, const std::function<void(Job&)>& change);
    // A source document was taken: creates `fresh` when no job `fresh.id` exists, else
    // reopens that job for a redelivery (status processing, attempts + 1, owner
    // `fresh.owner`, last error cleared). Returns the status the job had before, or nullopt
    // when it was created. Default: update_job, then put_job; backends may do it in one step.
    // `fresh` is taken by value: a backend that keeps it (memory) moves it in.
    virtual std::optional<std::string> open_job(Job fresh);
    // open_job() from the parts the runtime has when it takes a source document (once per
    // document): a backend that keeps jobs as structs (memory) builds the new job in place
    // instead of moving a whole Job in. Default: open_job(opening.job()).
    virtual std::optional<std::string> open_job_from(const JobOpening& opening);
    virtual JobPage list_jobs(const JobQuery& query) = 0;
    // Number of jobs per status (all time).
    virtual std::map<std::string, std::size_t> count_jobs_by_status() = 0;
    // Default: pages through list_jobs(); backends may compute it in place.
    virtual JobAggregate aggregate_jobs(std::int64_t from_ms, std::int64_t to_ms);
};

// What open_job() does to a job that exists (shared by every backend's implementation).
void reopen_job(Job& job, const std::string& owner);

// Adds one job to an aggregate (shared by every backend's implementation).
void accumulate(JobAggregate& a, const Job& job);

// Why `url` is not a Redis URL this store can use (redis://[:password@]host:port/db), or ""
// when it is one. Never quotes the URL: it may hold the password.
std::string redis_url_problem(const std::string& url);

// backend "sqlite" (path) or "redis" (url: redis://[:password@]host:port/db) or "memory".
std::unique_ptr<Store> open_store(const std::string& backend, const std::string& path_or_url, Clock& clock);

}  // namespace docpipe::core
