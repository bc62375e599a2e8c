// sink.sheets: the audit log. One row per document in a Google Sheets spreadsheet, one tab
// per month ("<tab_prefix>YYYY-MM", the month of the row's timestamp at utc_offset_minutes).
//
// A row: Timestamp (ISO 8601 with the offset), Email ID (attribute message_id), Sender
// (attribute from, in full: the sheet is the audit log; it is never logged), Attachment
// (attribute filename), Member ID, Provider, Total Amount (a number), Confidence (a number),
// Route (fields.confidence_level, "(review)" added when fields.review_flag is set or the
// level is low, or a sink before this one parked it, attribute parked_by; "(approved)" for a
// claim a reviewer approved, attribute approved_at: the approval is a row of its own, after
// the one the claim got when it went to review), NCB Reference (fields or attribute ncb_claim_reference: set when the audit
// node follows the NCB node's `accepted` port, as in the shipped pipelines; empty for a
// claim that went to review, or with the audit node beside the NCB node),
// Warnings (fields.warnings joined with "; ", after "parked by <sink>: <reason>" for a
// claim a sink before this one parked, attributes parked_by and parked_reason), Document ID. Claim values come from
// docpipe::claim::field_value.
//
// The calls:
// - the month's tab is looked up (GET /v4/spreadsheets/{id}?fields=sheets.properties) and
//   created when missing (batchUpdate addSheet, first row frozen); a 400 "already exists"
//   from a concurrent creator counts as success. Known tabs are cached; a tab deleted by a
//   person ("Unable to parse range" on append) is forgotten and created again, once.
// - rows go in with values:append, valueInputOption=RAW (strings stay text) and
//   insertDataOption=INSERT_ROWS, range '<tab>'!A1. The header row goes in the same append
//   as the first rows of a tab this process created, so a tab never holds rows without it
//   (a creator that dies between addSheet and its first append leaves a tab without header).
// - formula injection is neutralised although RAW would store it as text anyway: a string
//   cell starting with =, +, -, @, tab or CR gets a leading '. Numbers go as JSON numbers.
//
// Batching: write() returns Ok only once the row is in the sheet. Concurrent write() calls
// (concurrent_safe; give the node a `concurrency` of a few) are grouped: the first caller
// of a batch waits up to `batch_wait` (real time) or until `batch_rows` rows are queued, then
// sends ONE append for them, and every caller of the batch returns that append's result.
// Appends go out one at a time; while one is out, the next batch keeps taking rows. If Google refuses a batch outright (a 4xx that is not about
// quota or access), each row is tried alone so only the culprit fails. With concurrency 1
// nothing can join a batch: set batch_wait: 0 there.
//
// What each answer does: see google_client.hpp (2xx ok; 401 refresh once then hold; token
// refused → hold + health Unavailable; 429/403 rate limit → hold for Retry-After or 1-16 s;
// 403 permission / 404 spreadsheet → hold + health Unavailable; 5xx/no answer → hold +
// circuit breaker; other 4xx → fail with Google's message).
//
// Each row once: before its first append a document gets a marker in the state store
// (`sheets/<spreadsheet>/<doc id>`, kept `remember_for`); a later try that finds the marker
// (an answer lost, or a crash between the append and the delivery ledger) first looks for
// the document's id in the tab's Document ID column and, if the row is there, does not
// append it again.
//
// The journal: when Sheets cannot take a row (down, rate-limited past a hold, credentials
// refused, breaker open) the row goes to a journal in the state store
// (`sheets-journal/<spreadsheet>/<epoch ms>-<sequence>-<process>`) and the document is done:
// the audit log must not hold claims back from NCB. While anything is journaled, new rows
// queue behind it, so the sheet keeps their order. A background thread replays the journal,
// oldest first: at start, then every `journal_retry` until it is empty, and once more at
// stop (a `--once` run writes its journal out before it exits if Sheets is back). Each entry
// is erased after its append, and the document's marker (above) stops a second copy when a
// crash falls between the two. Processes that share one state store (Redis) share the
// journal: keys name the process, so none overwrites another's, and a replaying process
// first claims each entry (`sheets-journal-claim/...`, 5 min lease), so no two append it. A
// row Sheets refuses on replay (a 4xx) is moved to `sheets-journal-refused/...` with the
// reason, logged, and shown by health, not dropped. `journal: false` makes rows wait (hold).
//
// Reference: sheets_range = the row's A1 range ('Claims 2026-11'!A7:L7).
// Threading: write() may run on many threads at once; one mutex guards the queue, another
// serialises the appends and the tab cache. Ownership: the Context outlives the sink.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "docpipe/component.hpp"
#include "google_client.hpp"

namespace docpipe::google {

class SheetsSink : public Sink {
public:
    static ComponentDescriptor describe();
    SheetsSink(const Config& config, Context& context);
    SinkResult write(const Document& doc) override;
    void start() override;
    void stop() override;
    ~SheetsSink() override;
    HealthReport health() override;

    // The audit row for a document (for tests): cells already neutralised.
    static nlohmann::json row_for(const Document& doc, std::chrono::system_clock::time_point at, int utc_offset_minutes);
    static std::string neutralise(std::string text);

private:
    // The row of `doc_id` with this Route already in `tab` (a claim's row from when it went to
    // review and its row once approved share the Document ID, not the Route).
    std::optional<std::string> find_row(const std::string& tab, const std::string& doc_id, const std::string& route);
    std::optional<std::string> find_row_quietly(const std::string& tab, const std::string& doc_id, const std::string& route);
    static bool is_approved(const Document& doc);  // attribute approved_at (the admin API's approval)

public:

private:
    struct Row {
        std::string tab;
        nlohmann::json cells;
        std::string doc_id;
        std::string job_id;  // the document's job (its "job_id" attribute, else its own id)
    };
    struct Batch {
        std::vector<Row> rows;
        std::vector<SinkResult> results;
        bool sealed = false;  // no more rows join
        bool done = false;    // results are in
        std::condition_variable cv;
    };

    std::vector<SinkResult> flush(const std::vector<Row>& rows);
    // Journal: add a row (true when stored), and replay what is there (the thread's loop).
    bool journal_row(const Row& row);
    SinkResult append_batched(Row row);  // the batching write path
    // Replays until the journal is empty or Sheets cannot take more; true when it is empty.
    bool replay_journal();
    void replay_loop();
    // A replayed row's range goes on its job (Context::amend_reference). A job not settled
    // yet (the row was journaled and written while its documents were still in flight) is
    // tried again at the next round and at stop, when the runtime has drained.
    void amend_job(const Row& row, const std::string& range);
    void amend_waiting_jobs();
    // Claims a journal entry for this process's replay; false when another process holds it.
    bool claim_entry(const std::string& key);
    void release_entry(const std::string& key);
    // Appends rows (all of one tab); returns each row's A1 range. Throws Stop.
    std::vector<std::string> append(const std::string& tab, const std::vector<const Row*>& rows);
    void ensure_tab(const std::string& tab);     // throws Stop
    bool header_missing(const std::string& tab);  // throws Stop
    void write_header(const std::string& tab);    // throws Stop
    std::string spreadsheet_url() const;

    GoogleClient client_;
    Context& ctx_;
    std::string base_;
    std::string spreadsheet_id_;
    std::string tab_prefix_;
    std::size_t batch_rows_;
    std::chrono::milliseconds batch_wait_;
    int utc_offset_minutes_;
    std::chrono::seconds remember_for_;

    std::mutex queue_mutex_;
    std::shared_ptr<Batch> open_;  // the batch new rows join, if any

    std::mutex append_mutex_;  // one append at a time; guards the fields below
    std::set<std::string> known_tabs_;
    // Tabs whose row 1 is empty: this process created them, or a process stopped between
    // creating a tab and writing its header. The header goes in before the next append.
    std::set<std::string> needs_header_;

    std::atomic<std::uint64_t> rows_written_{0};
    std::atomic<std::uint64_t> appends_{0};

    bool journal_enabled_;
    std::chrono::milliseconds journal_retry_;
    std::string journal_prefix_;
    std::atomic<std::int64_t> journaled_{0};  // entries waiting in the journal
    std::atomic<std::uint64_t> journal_sequence_{0};
    std::atomic<std::int64_t> refused_{0};     // entries Sheets refused on replay, kept aside
    std::atomic<std::chrono::steady_clock::rep> last_replay_failure_{0};  // when a replay last stopped short
    std::string instance_;                     // this process's part of journal keys and claims
    bool stopped_ = false;                     // stop() ran (the destructor calls it again)
    std::mutex replay_mutex_;                 // one replay at a time
    struct Unamended {
        std::string job_id, doc_id, range;
    };
    std::mutex unamended_mutex_;
    std::vector<Unamended> unamended_;  // written rows whose job did not take the range yet
    std::mutex thread_mutex_;
    std::condition_variable thread_cv_;
    bool stopping_ = false;
    std::thread replayer_;
};

}  // namespace docpipe::google
