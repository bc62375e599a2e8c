#include "sheets_sink.hpp"

#include <cctype>
#include <cmath>
#include <map>
#include <random>

#include <fmt/core.h>

#include "docpipe/claim.hpp"

namespace docpipe::google {

using nlohmann::json;

namespace {

const std::vector<std::string> kHeader = {"Timestamp", "Email ID", "Sender",        "Attachment", "Member ID",  "Provider",
                                          "Total Amount", "Confidence", "Route", "NCB Reference", "Warnings", "Document ID"};

std::string as_text(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return {};
    return docpipe::json_text(v);
}

// 'It''s'!A1: A1 notation quotes a title in ' and doubles a ' inside it.
std::string quoted(const std::string& tab) {
    std::string out = "'";
    for (char c : tab) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

bool split_cell(std::string_view cell, std::string& column, long& row) {
    std::size_t i = 0;
    while (i < cell.size() && std::isalpha(static_cast<unsigned char>(cell[i]))) ++i;
    if (i == 0 || i == cell.size()) return false;
    column = std::string(cell.substr(0, i));
    row = 0;
    for (std::size_t j = i; j < cell.size(); ++j) {
        if (!std::isdigit(static_cast<unsigned char>(cell[j]))) return false;
        row = row * 10 + (cell[j] - '0');
    }
    return true;
}

// Each appended row's own range, from the append's updatedRange ('Tab'!A5:L14). Falls back
// to the whole range.
std::vector<std::string> row_ranges(const std::string& updated, std::size_t count) {
    std::vector<std::string> out(count, updated);
    const auto bang = updated.rfind('!');
    if (bang == std::string::npos) return out;
    const std::string cells = updated.substr(bang + 1);
    const auto colon = cells.find(':');
    std::string c1, c2;
    long r1 = 0, r2 = 0;
    if (colon == std::string::npos) {
        if (!split_cell(cells, c1, r1)) return out;
        c2 = c1;
        r2 = r1;
    } else if (!split_cell(std::string_view(cells).substr(0, colon), c1, r1) || !split_cell(std::string_view(cells).substr(colon + 1), c2, r2)) {
        return out;
    }
    if (r2 - r1 + 1 != static_cast<long>(count)) return out;
    const std::string sheet = updated.substr(0, bang);
    for (std::size_t i = 0; i < count; ++i) {
        const long r = r1 + static_cast<long>(i);
        out[i] = fmt::format("{}!{}{}:{}{}", sheet, c1, r, c2, r);
    }
    return out;
}

}  // namespace

ComponentDescriptor SheetsSink::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Sink;
    d.name = "sink.sheets";
    d.summary = "Audit log: one row per document in a Google Sheets spreadsheet, one tab per month; batched appends";
    d.concurrent_safe = true;
    d.has_health_probe = true;
    d.config = ConfigSpec{
        Field::string("spreadsheet_id").required().describe(
            "The spreadsheet's id (from its URL: /spreadsheets/d/<id>/edit); share it with the service account as editor"),
        Field::boolean("journal").default_value(true).describe(
            "When Sheets cannot take a row, keep it in a journal in the state store and replay it later, in order, "
            "instead of holding the document"),
        Field::duration("journal_retry").default_value("30s").min(0.05).describe("How often the journal is replayed while it is not empty"),
        Field::duration("remember_for").default_value("30d").min(60).describe(
            "How long a document's append is remembered, so a retry after a lost answer or a crash finds its row instead "
            "of adding a second one"),
        Field::string("tab_prefix").default_value("Claims ").describe("Monthly tabs are named <tab_prefix>YYYY-MM"),
        Field::integer("batch_rows").default_value(20).min(1).max(1000).describe(
            "Most rows in one append: a batch is sent as soon as this many documents wait"),
        Field::duration("batch_wait").default_value("2s").min(0).describe(
            "How long the first document of a batch waits for others to join (concurrent writes only; 0 with concurrency 1)"),
        Field::integer("utc_offset_minutes").default_value(480).min(-720).max(840).describe(
            "Time zone of the Timestamp column and of the monthly tabs (Malaysia: 480 = +08:00)"),
        Field::string("sheets_url").default_value("https://sheets.googleapis.com").describe("Sheets API root (tests point it at a fake)"),
    };
    add_client_fields(d.config);
    return d;
}

SheetsSink::SheetsSink(const Config& config, Context& context)
    : client_(config, context, "Sheets", {"https://www.googleapis.com/auth/spreadsheets"},
              "the spreadsheet " + config.get_string("spreadsheet_id")),
      ctx_(context),
      base_(base_url(config, "sheets_url")),
      spreadsheet_id_(config.get_string("spreadsheet_id")),
      tab_prefix_(config.get_string("tab_prefix")),
      batch_rows_(static_cast<std::size_t>(config.get_int("batch_rows"))),
      batch_wait_(config.get_duration("batch_wait")),
      utc_offset_minutes_(static_cast<int>(config.get_int("utc_offset_minutes"))),
      remember_for_(std::chrono::duration_cast<std::chrono::seconds>(config.get_duration("remember_for"))),
      journal_enabled_(config.get_bool("journal")),
      journal_retry_(config.get_duration("journal_retry")),
      journal_prefix_("sheets-journal/" + config.get_string("spreadsheet_id") + "/") {
    if (spreadsheet_id_.empty()) throw std::invalid_argument("spreadsheet_id is empty");
    std::random_device random;
    instance_ = fmt::format("{:08x}{:08x}", random(), random());
}

namespace {
constexpr auto kClaimLease = std::chrono::seconds(300);
std::string refused_prefix(const std::string& spreadsheet_id) { return "sheets-journal-refused/" + spreadsheet_id + "/"; }
// The claim of journal entry "sheets-journal/<book>/<entry>": "sheets-journal-claim/<book>/<entry>".
std::string claim_key(const std::string& entry_key) { return "sheets-journal-claim/" + entry_key.substr(std::string("sheets-journal/").size()); }
}  // namespace

bool SheetsSink::claim_entry(const std::string& key) {
    const std::string claim = claim_key(key);
    if (ctx_.state().put_if_absent(claim, instance_, kClaimLease)) return true;
    return ctx_.state().get(claim).value_or("") == instance_;  // ours from an earlier round
}

void SheetsSink::release_entry(const std::string& key) {
    ctx_.state().erase(key);
    ctx_.state().erase(claim_key(key));
}

SheetsSink::~SheetsSink() { stop(); }

void SheetsSink::start() {
    if (!journal_enabled_) return;
    // Rows already in the journal (an earlier run's, or another process's) go first.
    const auto waiting = ctx_.state().keys(journal_prefix_, 1'000'000);
    journaled_.store(static_cast<std::int64_t>(waiting.size()));
    refused_.store(static_cast<std::int64_t>(ctx_.state().keys(refused_prefix(spreadsheet_id_), 1'000'000).size()));
    if (!waiting.empty())
        ctx_.log().log(LogLevel::Info, fmt::format("{} audit row(s) wait in the journal; they are replayed first", waiting.size()));
    if (refused_.load() > 0)
        ctx_.log().log(LogLevel::Warn, fmt::format("{} journaled audit row(s) that Sheets refused are kept under {}", refused_.load(),
                                                   refused_prefix(spreadsheet_id_)));
    std::lock_guard lock(thread_mutex_);
    stopping_ = stopped_ = false;
    replayer_ = std::thread([this] { replay_loop(); });
}

void SheetsSink::stop() {
    {
        std::lock_guard lock(thread_mutex_);
        if (stopped_) return;
        stopped_ = stopping_ = true;
    }
    thread_cv_.notify_all();
    if (replayer_.joinable()) replayer_.join();
    // The runtime has drained: the jobs of rows written meanwhile are settled now.
    amend_waiting_jobs();
    if (!journal_enabled_ || journaled_.load() <= 0) return;
    // The documents are done by now (the runtime drained): write the journal out if Sheets
    // takes it, so that a --once run leaves nothing behind when Sheets is back. Not when a
    // replay just stopped short: Sheets is away, and trying again would only hold up the stop
    // by another request timeout.
    const auto failed_at = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_replay_failure_.load()));
    const bool just_failed = last_replay_failure_.load() != 0 && std::chrono::steady_clock::now() - failed_at < std::chrono::seconds(10);
    const bool replayed = !just_failed && replay_journal();
    amend_waiting_jobs();  // the rows this last replay wrote
    if (!replayed)
        ctx_.log().warn("{} audit row(s) stay in the journal in the state store, for the next start (or another process sharing "
                        "the store) to replay; with `state: memory` they are lost at exit",
                        std::max<std::int64_t>(0, journaled_.load()));
}

bool SheetsSink::journal_row(const Row& row) {
    // Time first, so that the sorted keys of all processes sharing the store are (about) the
    // order the rows came in; the sequence orders one process's rows within a millisecond;
    // the process's id keeps two processes from writing the same key.
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.clock().now().time_since_epoch()).count();
    const std::string key = fmt::format("{}{:015}-{:010}-{}", journal_prefix_, now_ms, journal_sequence_.fetch_add(1) + 1, instance_);
    try {
        ctx_.state().put(key, docpipe::json_text(json{{"tab", row.tab}, {"cells", row.cells}, {"doc_id", row.doc_id}, {"job_id", row.job_id}}));
    } catch (const std::exception& e) {
        ctx_.log().log(LogLevel::Warn, fmt::format("could not journal the audit row: {}", e.what()), row.doc_id);
        return false;
    }
    journaled_.fetch_add(1);
    thread_cv_.notify_all();
    return true;
}

bool SheetsSink::replay_journal() {
    std::lock_guard replaying(replay_mutex_);
    // Entries this round claimed and has not settled: their claims go when the round ends
    // without them, so the next round, this process's next start or another process can take
    // them at once (only a crash leaves a claim to its lease).
    std::vector<std::string> claimed;
    auto give_back = [&] {
        for (const auto& k : claimed) {
            try {
                ctx_.state().erase(claim_key(k));
            } catch (const std::exception&) {
                // the store is away: the lease ends the claim
            }
        }
        claimed.clear();
        last_replay_failure_.store(std::chrono::steady_clock::now().time_since_epoch().count());
        return false;
    };
    try {
        while (journaled_.load() > 0) {
            claimed.clear();  // the last batch was settled
            const auto keys = ctx_.state().keys(journal_prefix_, batch_rows_);
            if (keys.empty()) {
                journaled_.store(0);
                return true;
            }
            std::vector<Row> rows;
            std::vector<std::string> taken, values;
            std::size_t others = 0;
            for (const auto& k : keys) {
                if (!claim_entry(k)) {  // another process sharing the store replays it
                    ++others;
                    continue;
                }
                const std::optional<std::string> value = ctx_.state().get(k);
                const auto j = value ? json::parse(*value, nullptr, false) : json();
                if (!j.is_object()) {  // gone meanwhile, or unreadable: nothing to append
                    release_entry(k);
                    journaled_.fetch_sub(1);
                    continue;
                }
                const std::string doc_id = j.value("doc_id", "");
                // Its row may be in already (a crash between an append and the erase below).
                const auto& cells = j.contains("cells") && j["cells"].is_array() ? j["cells"] : json::array();
                const std::string route = cells.size() > 8 && cells[8].is_string() ? cells[8].get<std::string>() : std::string();
                if (auto earlier = find_row_quietly(j.value("tab", ""), doc_id, route)) {
                    release_entry(k);
                    journaled_.fetch_sub(1);
                    continue;
                }
                // An entry journaled before SDK ABI 7 has no job id: a source document's is its own.
                rows.push_back(Row{j.value("tab", ""), j["cells"], doc_id, j.value("job_id", doc_id)});
                taken.push_back(k);
                claimed.push_back(k);
                values.push_back(*value);
            }
            if (rows.empty()) {
                if (others == 0) continue;  // all were settled here: look again
                return give_back();         // the rest is another process's now
            }
            std::vector<SinkResult> results;
            {
                std::lock_guard appending(append_mutex_);
                results = flush(rows);
            }
            for (std::size_t i = 0; i < rows.size(); ++i) {
                if (results[i].status() == SinkResult::Status::Fail) {
                    // A row Google refuses for itself (a 4xx) would block everything behind it:
                    // set aside with its reason, where an operator finds it, never dropped.
                    const std::string aside = refused_prefix(spreadsheet_id_) + taken[i].substr(journal_prefix_.size());
                    auto kept = json::parse(values[i], nullptr, false);
                    if (!kept.is_object()) kept = json::object();
                    kept["refused"] = results[i].reason();
                    ctx_.state().put(aside, docpipe::json_text(kept));
                    release_entry(taken[i]);
                    journaled_.fetch_sub(1);
                    refused_.fetch_add(1);
                    ctx_.log().log(LogLevel::Error,
                                   fmt::format("journaled audit row refused by Sheets, kept under {}: {}", aside, results[i].reason()),
                                   rows[i].doc_id);
                    continue;
                }
                if (results[i].status() != SinkResult::Status::Ok) {  // still down: the rest waits, in order
                    claimed.erase(claimed.begin(), claimed.begin() + static_cast<std::ptrdiff_t>(i));  // those before are settled
                    return give_back();
                }
                release_entry(taken[i]);
                journaled_.fetch_sub(1);
                // The job read "sheets_range: journaled" since the row was journaled: it now
                // says where the row went. This line, under the document's id, says it too
                // (and is all there is when the job is not settled yet, or not kept).
                const auto range = results[i].references().find("sheets_range");
                const std::string where = range != results[i].references().end() ? range->second : std::string("(range not given)");
                ctx_.log().log(LogLevel::Info, fmt::format("journaled audit row written at {}", where), rows[i].doc_id);
                if (range != results[i].references().end()) amend_job(rows[i], range->second);
            }
            ctx_.log().log(LogLevel::Info,
                           fmt::format("replayed {} journaled audit row(s); {} left", rows.size(), std::max<std::int64_t>(0, journaled_.load())));
        }
        return true;
    } catch (const std::exception& e) {
        ctx_.log().log(LogLevel::Debug, fmt::format("journal replay stopped for now: {}", e.what()));
        return give_back();  // the store or Sheets is away: next round
    }
}

void SheetsSink::amend_job(const Row& row, const std::string& range) {
    if (ctx_.amend_reference(row.job_id, row.doc_id, "sheets_range", range)) return;
    std::lock_guard lock(unamended_mutex_);
    if (unamended_.size() < 10'000) unamended_.push_back({row.job_id, row.doc_id, range});  // the log line above says it anyway
}

void SheetsSink::amend_waiting_jobs() {
    std::vector<Unamended> waiting;
    {
        std::lock_guard lock(unamended_mutex_);
        waiting.swap(unamended_);
    }
    std::vector<Unamended> still;
    for (auto& w : waiting)
        if (!ctx_.amend_reference(w.job_id, w.doc_id, "sheets_range", w.range)) still.push_back(std::move(w));
    std::lock_guard lock(unamended_mutex_);
    unamended_.insert(unamended_.end(), std::make_move_iterator(still.begin()), std::make_move_iterator(still.end()));
}

void SheetsSink::replay_loop() {
    std::unique_lock lock(thread_mutex_);
    bool first = true;  // what the start found goes out at once, not after journal_retry
    while (!stopping_) {
        if (!first || journaled_.load() <= 0) thread_cv_.wait_for(lock, journal_retry_, [&] { return stopping_; });
        first = false;
        if (stopping_) break;
        lock.unlock();
        amend_waiting_jobs();
        lock.lock();
        if (journaled_.load() <= 0) continue;
        lock.unlock();
        replay_journal();
        lock.lock();
    }
}

std::string SheetsSink::neutralise(std::string text) {
    if (!text.empty() && (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@' || text[0] == '\t' || text[0] == '\r'))
        text.insert(text.begin(), '\'');
    // Sheets refuses a cell over 50,000 characters, and with it the whole row (a 60 KB From
    // header would cost the claim its audit row): keep the start, say it was cut.
    constexpr std::size_t kMaxCell = 50'000;
    static constexpr std::string_view kCut = " [cut: over 50,000 characters]";
    if (text.size() > kMaxCell) {
        std::size_t keep = kMaxCell - kCut.size();
        while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;  // not inside a UTF-8 character
        text.resize(keep);
        text += kCut;
    }
    return text;
}

json SheetsSink::row_for(const Document& doc, std::chrono::system_clock::time_point at, int utc_offset_minutes) {
    auto text = [](std::string s) { return json(neutralise(std::move(s))); };
    auto claim_text = [&](const char* name) {
        auto v = claim::field_value(doc, name);
        return text(v ? as_text(*v) : std::string());
    };
    json total = "";
    if (auto v = claim::field_value(doc, "total_amount")) total = v->is_number() ? json(std::round(v->get<double>() * 100.0) / 100.0) : text(as_text(*v));
    json confidence = "";
    if (auto c = doc.fields.find("confidence"); c != doc.fields.end() && c->is_number())
        confidence = std::round(c->get<double>() * 1000.0) / 1000.0;

    std::string level;
    if (auto l = doc.fields.find("confidence_level"); l != doc.fields.end() && l->is_string()) level = l->get<std::string>();
    std::string flag;
    bool review = level == "low";
    if (auto f = doc.fields.find("review_flag"); f != doc.fields.end()) {
        if (f->is_string() && !f->get<std::string>().empty()) {
            review = true;
            flag = f->get<std::string>();
        } else if (f->is_boolean() && f->get<bool>()) {
            review = true;
        }
    }
    const bool parked = doc.attributes.count("parked_by") != 0;  // the claim on its way to a person
    std::string route = level;
    if (is_approved(doc) && !parked) {  // a reviewer's decision: its row follows the one the review got
        route = route.empty() ? "approved" : route + " (approved)";
    } else if (review || parked) {
        const std::string mark = flag.empty() ? "review" : "review: " + flag;
        route = route.empty() ? mark : route + " (" + mark + ")";
    }

    std::string ncb;
    if (auto r = doc.fields.find("ncb_claim_reference"); r != doc.fields.end() && r->is_string()) ncb = r->get<std::string>();
    if (ncb.empty()) ncb = attribute(doc, "ncb_claim_reference");

    // Why a sink before this one parked it (NCB's refusal, the review's reason) comes first:
    // the Route says "(review)", this says what a person is to look at.
    std::string warnings;
    if (parked) {
        const std::string why = attribute(doc, "parked_reason");
        if (!why.empty()) warnings = "parked by " + attribute(doc, "parked_by") + ": " + why;
    }
    if (auto w = doc.fields.find("warnings"); w != doc.fields.end() && w->is_array())
        for (const auto& item : *w) {
            const std::string t = as_text(item);
            if (!t.empty()) warnings += (warnings.empty() ? "" : "; ") + t;
        }

    return json::array({text(claim::iso8601_with_offset(at, utc_offset_minutes)), text(attribute(doc, "message_id")),
                        text(attribute(doc, "from")), text(attribute(doc, "filename")), claim_text("member_id"), claim_text("provider_name"),
                        total, confidence, text(route), text(ncb), text(warnings), text(doc.id)});
}

std::string SheetsSink::spreadsheet_url() const { return base_ + "/v4/spreadsheets/" + net::url_encode(spreadsheet_id_); }

// The row an earlier try appended for this document, if there is one: its Document ID
// (column L) is looked up in the tab that try wrote to.
bool SheetsSink::is_approved(const Document& doc) {
    const auto a = doc.attributes.find("approved_at");
    return a != doc.attributes.end() && !a->second.empty();
}

std::optional<std::string> SheetsSink::find_row(const std::string& tab, const std::string& doc_id, const std::string& route) {
    // Route to Document ID (I:L): a claim's row from when it went to review and its row once
    // approved share the Document ID; the Route tells them apart.
    const std::string range = quoted(tab) + "!I:L";
    net::HttpResponse response;
    try {
        response = client_.send({"GET", spreadsheet_url() + "/values/" + net::url_encode(range), {}, {}, {}});
    } catch (const net::TransportError& e) {
        throw Stop{client_.unreachable(e, "look for an earlier row in '" + tab + "'")};
    }
    if (response.status == 400) return std::nullopt;  // "Unable to parse range": the tab is not there, so neither is the row
    if (!response.ok()) throw Stop{client_.failure(response, "look for an earlier row in '" + tab + "'")};
    const auto j = json::parse(response.body, nullptr, false);
    if (!j.is_object() || !j.contains("values") || !j["values"].is_array()) return std::nullopt;
    const auto& rows = j["values"];
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        if (!r.is_array() || r.size() < 4 || r[3] != doc_id) continue;
        if ((r[0].is_string() ? r[0].get<std::string>() : std::string()) == route) return fmt::format("{}!A{}:L{}", quoted(tab), i + 1, i + 1);
    }
    return std::nullopt;
}

std::optional<std::string> SheetsSink::find_row_quietly(const std::string& tab, const std::string& doc_id, const std::string& route) {
    if (tab.empty() || doc_id.empty()) return std::nullopt;
    try {
        return find_row(tab, doc_id, route);
    } catch (Stop&) {
        return std::nullopt;  // cannot tell now: the append that follows will tell
    }
}

SinkResult SheetsSink::write(const Document& doc) {
    const auto now = ctx_.clock().now();
    const auto date = local_date(now, utc_offset_minutes_);
    const auto job = doc.attributes.find("job_id");
    Row row{fmt::format("{}{:04}-{:02}", tab_prefix_, date.year, date.month), row_for(doc, now, utc_offset_minutes_), doc.id,
            job != doc.attributes.end() && !job->second.empty() ? job->second : doc.id};

    // Each row once. A marker in the state store, set before the first append, says that a
    // row for this document may already be in the sheet: a try whose answer was lost, or a
    // crash between the append and the delivery ledger. Only then is the sheet read (one GET
    // of the Document ID column), so the normal path costs one store write.
    // The claim on its way to a person (parked before this sink) has a marker of its own: its
    // row does not stand for the claim's row once a reviewer approved it.
    const bool parked = doc.attributes.count("parked_by") != 0;
    const std::string marker = "sheets/" + spreadsheet_id_ + "/" + doc.id + (parked ? "@parked" : "");
    const std::string route = row.cells.size() > 8 && row.cells[8].is_string() ? row.cells[8].get<std::string>() : std::string();
    if (!ctx_.state().put_if_absent(marker, row.tab, remember_for_)) {
        try {
            if (auto earlier = find_row(ctx_.state().get(marker).value_or(row.tab), doc.id, route)) {
                ctx_.log().log(LogLevel::Info, "its row is already in the sheet (an earlier try); not appended again", doc.id);
                return SinkResult::ok().with_reference("sheets_range", *earlier);
            }
        } catch (Stop& stop) {
            return stop.result;
        }
        ctx_.state().put(marker, row.tab, remember_for_);  // this try's tab, should it be cut short too
    }
    // While rows wait in the journal, new ones queue behind them: the sheet keeps the order.
    if (journal_enabled_ && journaled_.load() > 0 && journal_row(row))
        return SinkResult::ok().with_reference("sheets_range", "journaled");
    const Row kept = row;
    SinkResult result = append_batched(std::move(row));
    if (journal_enabled_ && result.status() == SinkResult::Status::Hold && journal_row(kept)) {
        ctx_.log().log(LogLevel::Warn, "Sheets cannot take the audit row now (" + result.reason() + "); journaled, replayed later",
                       kept.doc_id);
        return SinkResult::ok().with_reference("sheets_range", "journaled");
    }
    return result;
}

SinkResult SheetsSink::append_batched(Row row) {
    std::shared_ptr<Batch> batch;
    std::size_t index = 0;
    {
        std::unique_lock lock(queue_mutex_);
        const bool leader = !open_;
        if (leader) open_ = std::make_shared<Batch>();
        batch = open_;
        index = batch->rows.size();
        batch->rows.push_back(std::move(row));
        if (batch->rows.size() >= batch_rows_) {
            batch->sealed = true;
            open_.reset();
            batch->cv.notify_all();
        }
        if (!leader) {
            batch->cv.wait(lock, [&] { return batch->done; });
            return batch->results[index];
        }
        // The leader waits for others to join (real time: this is about threads meeting, not
        // about the document's clock).
        batch->cv.wait_for(lock, batch_wait_, [&] { return batch->sealed; });
    }

    std::vector<SinkResult> results;
    {
        // While an earlier append is still out, rows keep joining this batch; it closes when
        // its turn comes (or when it is full).
        std::lock_guard appending(append_mutex_);
        {
            std::lock_guard lock(queue_mutex_);
            batch->sealed = true;
            if (open_ == batch) open_.reset();
        }
        try {
            results = flush(batch->rows);
        } catch (const std::exception& e) {
            // Whatever went wrong, no caller of the batch may be left waiting.
            results.assign(batch->rows.size(),
                           SinkResult::retry(std::chrono::seconds(1), std::string("sheets append failed: ") + e.what()));
        }
    }
    {
        std::lock_guard lock(queue_mutex_);
        batch->results = results;
        batch->done = true;
    }
    batch->cv.notify_all();
    return results[index];
}

std::vector<SinkResult> SheetsSink::flush(const std::vector<Row>& rows) {
    std::vector<std::optional<SinkResult>> results(rows.size());
    // Rows of one batch normally share a tab; at the turn of a month they may not.
    std::vector<std::string> order;
    std::map<std::string, std::vector<std::size_t>> by_tab;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        auto& group = by_tab[rows[i].tab];
        if (group.empty()) order.push_back(rows[i].tab);
        group.push_back(i);
    }
    for (const auto& tab : order) {
        const auto& indices = by_tab[tab];
        std::vector<const Row*> group;
        for (auto i : indices) group.push_back(&rows[i]);
        auto settle = [&](const std::vector<std::size_t>& which, const std::vector<const Row*>& part) {
            const auto ranges = append(tab, part);
            for (std::size_t k = 0; k < which.size(); ++k) {
                ctx_.log().log(LogLevel::Info, fmt::format("audit row at {}", ranges[k]), rows[which[k]].doc_id);
                results[which[k]] = SinkResult::ok().with_reference("sheets_range", ranges[k]);
            }
        };
        try {
            settle(indices, group);
        } catch (Stop& stop) {
            if (stop.result.status() == SinkResult::Status::Fail && group.size() > 1) {
                // Google refused the whole batch: find the row it is about, so the others go in.
                for (std::size_t k = 0; k < group.size(); ++k) {
                    try {
                        settle({indices[k]}, {group[k]});
                    } catch (Stop& single) {
                        results[indices[k]] = single.result;
                    }
                }
            } else {
                for (auto i : indices) results[i] = stop.result;
            }
        }
    }
    std::vector<SinkResult> out;
    out.reserve(rows.size());
    for (auto& r : results) out.push_back(r ? std::move(*r) : SinkResult::retry(std::chrono::seconds(1), "row was not sent"));
    for (std::size_t i = 0; i < rows.size(); ++i)
        if (out[i].status() != SinkResult::Status::Ok)
            ctx_.log().log(LogLevel::Warn, fmt::format("audit row not written: {}", out[i].reason()), rows[i].doc_id);
    return out;
}

std::vector<std::string> SheetsSink::append(const std::string& tab, const std::vector<const Row*>& rows) {
    for (int round = 0;; ++round) {
        ensure_tab(tab);
        if (needs_header_.count(tab)) {
            write_header(tab);
            needs_header_.erase(tab);
        }
        json values = json::array();
        for (const Row* r : rows) values.push_back(r->cells);
        const json body{{"majorDimension", "ROWS"}, {"values", std::move(values)}};
        const std::string what = fmt::format("append of {} row(s) to tab '{}' of spreadsheet {}", rows.size(), tab, spreadsheet_id_);
        net::HttpResponse response;
        try {
            response = client_.send({"POST",
                                     spreadsheet_url() + "/values/" + net::url_encode(quoted(tab) + "!A1") +
                                         ":append?valueInputOption=RAW&insertDataOption=INSERT_ROWS",
                                     {{"Content-Type", "application/json; charset=UTF-8"}},
                                     docpipe::json_text(body),
                                     {}});
        } catch (const net::TransportError& e) {
            throw Stop{client_.unreachable(e, what)};
        }
        if (!response.ok()) {
            if (response.status == 400 && round == 0 && response.body.find("Unable to parse range") != std::string::npos) {
                // A person deleted or renamed the tab since we saw it: find or create it again.
                known_tabs_.erase(tab);
                continue;
            }
            throw Stop{client_.failure(response, what)};
        }
        const auto j = json::parse(response.body, nullptr, false);
        std::string updated;
        if (j.is_object() && j.contains("updates") && j["updates"].is_object()) updated = j["updates"].value("updatedRange", "");
        if (updated.empty())
            // Sheets always says where the rows went: a 200 without it is not Sheets (a proxy, a
            // login page). The rows may or may not be in: the next try looks them up first
            // (each row's marker), so waiting can neither lose nor double them.
            throw Stop{SinkResult::hold(std::chrono::seconds(30),
                                        fmt::format("{}: Sheets answered HTTP {} without the appended range ({} bytes, Content-Type '{}'): "
                                                    "not taken as written; check sheets_url and any proxy in between",
                                                    what, response.status, response.body.size(),
                                                    response.header("content-type").value_or("none")))};
        appends_.fetch_add(1, std::memory_order_relaxed);
        rows_written_.fetch_add(rows.size(), std::memory_order_relaxed);
        ctx_.metrics().increment("sheets_appends_total");
        ctx_.metrics().increment("sheets_rows_total", static_cast<double>(rows.size()));
        return row_ranges(updated, rows.size());
    }
}

// The header is written in place (values.update of row 1), never appended: writing it twice
// leaves one header, so a process that finds a tab with an empty row 1 can always write it,
// whether the tab's creator stopped before its header went in or is about to write it now.
void SheetsSink::write_header(const std::string& tab) {
    const std::string range = quoted(tab) + "!A1";
    const json body{{"range", range}, {"majorDimension", "ROWS"}, {"values", json::array({kHeader})}};
    const std::string what = fmt::format("header of tab '{}' of spreadsheet {}", tab, spreadsheet_id_);
    net::HttpResponse response;
    try {
        response = client_.send({"PUT", spreadsheet_url() + "/values/" + net::url_encode(range) + "?valueInputOption=RAW",
                                 {{"Content-Type", "application/json; charset=UTF-8"}}, docpipe::json_text(body), {}});
    } catch (const net::TransportError& e) {
        throw Stop{client_.unreachable(e, what)};
    }
    if (!response.ok()) throw Stop{client_.failure(response, what)};
}

// Whether row 1 of a tab this process did not create is empty (a tab a person added, or one
// whose creator was stopped between adding it and writing its header).
bool SheetsSink::header_missing(const std::string& tab) {
    const std::string range = quoted(tab) + "!A1:L1";
    const auto got = client_.expect_ok({"GET", spreadsheet_url() + "/values/" + net::url_encode(range), {}, {}, {}},
                                       fmt::format("look-up of the header of tab '{}' of spreadsheet {}", tab, spreadsheet_id_));
    const auto j = json::parse(got.body, nullptr, false);
    if (!j.is_object() || !j.contains("values") || !j["values"].is_array() || j["values"].empty()) return true;
    const auto& first = j["values"][0];
    return !first.is_array() || first.empty();
}

void SheetsSink::ensure_tab(const std::string& tab) {
    if (known_tabs_.count(tab)) return;
    const auto listed = client_.expect_ok({"GET", spreadsheet_url() + "?fields=" + net::url_encode("sheets.properties(title)"), {}, {}, {}},
                                          "lookup of the tabs of spreadsheet " + spreadsheet_id_);
    const auto j = json::parse(listed.body, nullptr, false);
    known_tabs_.clear();
    if (j.is_object() && j.contains("sheets") && j["sheets"].is_array())
        for (const auto& s : j["sheets"])
            if (s.is_object() && s.contains("properties") && s["properties"].is_object())
                known_tabs_.insert(s["properties"].value("title", ""));
    if (known_tabs_.count(tab)) {
        if (header_missing(tab)) needs_header_.insert(tab);
        return;
    }

    const json request{
        {"requests",
         json::array({{{"addSheet", {{"properties", {{"title", tab}, {"gridProperties", {{"frozenRowCount", 1}}}}}}}}})}};
    const std::string what = fmt::format("creation of tab '{}' in spreadsheet {}", tab, spreadsheet_id_);
    net::HttpResponse response;
    try {
        response = client_.send({"POST", spreadsheet_url() + ":batchUpdate", {{"Content-Type", "application/json; charset=UTF-8"}},
                                 docpipe::json_text(request), {}});
    } catch (const net::TransportError& e) {
        throw Stop{client_.unreachable(e, what)};
    }
    if (response.ok()) {
        known_tabs_.insert(tab);
        needs_header_.insert(tab);
        ctx_.metrics().increment("sheets_tabs_created_total");
        ctx_.log().log(LogLevel::Info, fmt::format("created tab '{}' in spreadsheet {}", tab, spreadsheet_id_));
        return;
    }
    if (response.status == 400 && response.body.find("already exists") != std::string::npos) {
        // Another worker or process created it meanwhile. Its header may not be in yet; writing
        // the same header in place is harmless, so do not rely on the creator to finish.
        known_tabs_.insert(tab);
        if (header_missing(tab)) needs_header_.insert(tab);
        return;
    }
    throw Stop{client_.failure(response, what)};
}

HealthReport SheetsSink::health() {
    if (const auto refused = refused_.load(); refused > 0)
        return {Health::Degraded, fmt::format("{} journaled audit row(s) were refused by Sheets and are kept under {} with the reason; "
                                              "add them by hand, then erase the keys",
                                              refused, refused_prefix(spreadsheet_id_))};
    if (const auto waiting = journaled_.load(); waiting > 0) {
        // Rows are safe in the journal, but the sheet lags: at least degraded, and whatever
        // the client knows (credentials refused: unavailable) stands.
        auto h = client_.health("");
        const Health status = h.status == Health::Unavailable ? Health::Unavailable : Health::Degraded;
        return {status, fmt::format("{} audit row(s) journaled, waiting for Sheets{}", waiting,
                                    h.detail.empty() ? std::string() : ": " + h.detail)};
    }
    return client_.health(fmt::format("{} rows in {} appends to spreadsheet {} since start", rows_written_.load(), appends_.load(),
                                      spreadsheet_id_));
}

}  // namespace docpipe::google
