#include "job_book.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <csignal>
#include <map>
#include <optional>
#include <set>
#include <unistd.h>

#include <fmt/core.h>

#include "builtin/builtin.hpp"
#include "node.hpp"
#include "services.hpp"

namespace docpipe::core {

namespace {

std::string this_owner() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return fmt::format("{}:{}", host, ::getpid());
}

// True when `owner` names a process on this host that no longer runs.
bool owner_is_gone(const std::string& owner, const std::string& self) {
    const auto colon = owner.rfind(':');
    if (colon == std::string::npos) return false;
    const auto self_colon = self.rfind(':');
    if (owner.compare(0, colon, self, 0, self_colon) != 0) return false;  // another host: not ours to judge
    try {
        const int pid = std::stoi(owner.substr(colon + 1));
        if (pid == ::getpid()) return false;
        return ::kill(pid, 0) != 0 && errno == ESRCH;
    } catch (const std::exception&) {
        return false;
    }
}

// Appends `value` as a JSON string. Names and ids are plain ASCII and copied as they are;
// anything else goes through nlohmann's escaping, which also replaces invalid UTF-8.
void append_json_string(std::string& out, std::string_view value) {
    // Checked without an early exit, so the compiler can test several characters at once:
    // the names and ids written on the hot path are short and plain.
    bool plain = true;
    for (const char c : value) {
        const auto u = static_cast<unsigned char>(c);
        plain &= (u >= 0x20) & (u < 0x7f) & (c != '"') & (c != '\\');
    }
    if (plain) {
        // One append instead of three (each checks the capacity).
        char quoted[64];
        if (value.size() + 2 <= sizeof quoted) {
            quoted[0] = '"';
            std::memcpy(quoted + 1, value.data(), value.size());
            quoted[value.size() + 1] = '"';
            out.append(quoted, value.size() + 2);
            return;
        }
        out += '"';
        out += value;
        out += '"';
        return;
    }
    out += docpipe::json_text(nlohmann::json(std::string(value)));
}


int severity(DescendantOutcome::Kind k) {
    switch (k) {
        case DescendantOutcome::Kind::Skipped: return 0;
        case DescendantOutcome::Kind::Submitted: return 1;
        case DescendantOutcome::Kind::Review: return 2;
        case DescendantOutcome::Kind::Failed: return 3;
    }
    return 0;
}

DescendantOutcome::Kind kind_of(const std::string& status) {
    if (status == "review") return DescendantOutcome::Kind::Review;
    if (status == "failed") return DescendantOutcome::Kind::Failed;
    // A document a reviewer rejected (AdminActions::reject) is, like a skipped one, consumed
    // and not delivered; a rejected job is final, so this is for completeness.
    if (status == "skipped" || status == "rejected") return DescendantOutcome::Kind::Skipped;
    return DescendantOutcome::Kind::Submitted;
}

// The job status from its descendants' outcomes (one per document id, the worst kind).
// `source_id` is the job's own document: its delivery beside its parts' (the email archived
// as received, its receipts booked or skipped) keeps the source and books no claim, so it
// does not make the job `submitted` (see JobBook's contract).
std::string derive(const nlohmann::json& outcomes, std::string_view source_id) {
    std::size_t failed = 0, review = 0, submitted = 0, skipped = 0;
    for (const auto& o : outcomes) {
        const auto k = kind_of(o.value("status", ""));
        if (k == DescendantOutcome::Kind::Submitted && outcomes.size() > 1 && o.value("doc_id", "") == source_id) continue;
        failed += k == DescendantOutcome::Kind::Failed;
        review += k == DescendantOutcome::Kind::Review;
        submitted += k == DescendantOutcome::Kind::Submitted;
        skipped += k == DescendantOutcome::Kind::Skipped;
    }
    if (review) return "review";
    if (failed && submitted) return "partial";
    if (failed) return "failed";
    if (submitted) return "submitted";
    if (skipped) return "skipped";
    return "submitted";  // consumed with nothing to deliver and nothing to say
}

std::string summary_error(const nlohmann::json& outcomes, const std::string& status) {
    // The reason a person reads first: the failures for failed/partial, the review reasons
    // for review, the skip reason for skipped.
    const char* wanted = status == "review" ? "review" : status == "skipped" ? "skipped" : "failed";
    std::string text;
    for (const auto& o : outcomes) {
        if (o.value("status", "") != wanted) continue;
        std::string line = o.value("reason", "");
        if (std::string(wanted) == "skipped") line = o.value("node", "") + ": " + line;
        if (!o.value("name", "").empty() && status != "skipped" && outcomes.size() > 1) line = o.value("name", "") + ": " + line;
        text += (text.empty() ? "" : "; ") + line;
    }
    if (status == "review")  // and an attachment that failed beside it, as end() says it
        for (const auto& o : outcomes)
            if (o.value("status", "") == "failed")
                text += "; " + (o.value("name", "").empty() ? std::string() : o.value("name", "") + ": ") + "failed: " + o.value("reason", "");
    return text;
}

}  // namespace

std::string timeline_prefix(std::string_view node, std::string_view component) {
    std::string prefix = R"({"node":)";
    append_json_string(prefix, node);
    prefix += R"(,"component":)";
    append_json_string(prefix, component);
    return prefix;
}

namespace {

// One delivery of a source document as the runtime recorded it: the outcomes (sorted by
// document id, each document's worst first) and the hops. Kept on the job as they are
// (Job::set_delivery) and written as JSON text only when the job is read: a job ends for
// every source document on the hot path, and the memory store never reads it.
// The hops point at the Runtime's nodes (their cached timeline prefixes): the Runtime owns
// its store and destroys it after the nodes, and nothing writes a job's text out meanwhile.
class Delivery final : public DeliveryRecord {
public:
    std::vector<DescendantOutcome> outcomes;
    std::vector<HopRecord> hops;

    // One entry per document (the worst of its sinks), members in the order nlohmann's
    // dump() gives them (sorted by name).
    void append_outcomes(std::string& text) const override {
        text.reserve(text.size() + 2 + outcomes.size() * 96);
        text += '[';
        bool first_entry = true;
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
            if (i != 0 && outcomes[i].doc_id == outcomes[i - 1].doc_id) continue;
            const DescendantOutcome& o = outcomes[i];
            if (!first_entry) text += ',';
            first_entry = false;
            text += R"({"doc_id":)";
            append_json_string(text, o.doc_id);
            if (!o.name.empty()) {
                text += R"(,"name":)";
                append_json_string(text, o.name);
            }
            text += R"(,"node":)";
            append_json_string(text, o.node);
            if (!o.reason.empty()) {
                text += R"(,"reason":)";
                append_json_string(text, o.reason);
            }
            // References come from every sink of the document, not only the one whose outcome
            // is kept: the first value of each key, in the outcomes' order.
            std::map<std::string, std::string> references;
            for (std::size_t k = i; k < outcomes.size() && outcomes[k].doc_id == o.doc_id; ++k)
                for (const auto& [key, value] : outcomes[k].references) references.emplace(key, value);
            if (!references.empty()) {
                text += R"(,"references":{)";
                bool first = true;
                for (const auto& [key, value] : references) {
                    if (!first) text += ',';
                    first = false;
                    append_json_string(text, key);
                    text += ':';
                    append_json_string(text, value);
                }
                text += '}';
            }
            // Held by a receiving system (DescendantOutcome::held), by any of its sinks.
            for (std::size_t k = i; k < outcomes.size() && outcomes[k].doc_id == o.doc_id; ++k)
                if (outcomes[k].held) {
                    text += R"(,"held":true)";
                    break;
                }
            text += R"(,"status":")";
            text += to_string(o.kind);
            text += R"("})";
        }
        text += ']';
    }

    // Times are epoch milliseconds (the API renders them); the doc id is left out when it is
    // the job's own (HopRecord::doc_id is empty then).
    void append_trace(std::string& text) const override {
        text.reserve(text.size() + 2 + hops.size() * 160);
        text += '[';
        bool first_entry = true;
        for (const auto& h : hops) {
            std::string_view prefix = h.node ? std::string_view(h.node->trace_prefix) : std::string_view(R"({"node":"","component":"")");
            std::string built;  // a node not built by the Runtime has no cached prefix
            if (prefix.empty()) prefix = built = timeline_prefix(h.node->name(), h.node->spec->component);
            // The fixed part is written in place: the prefix, three integers of at most 20
            // characters, the outcome word and fewer than 60 characters of names.
            const std::string_view outcome = to_string(h.result);
            const std::size_t at = text.size();
            text.resize(at + 1 + prefix.size() + 3 * 20 + outcome.size() + 64);
            char* out = text.data() + at;
            auto literal = [&out](std::string_view s) {
                std::memcpy(out, s.data(), s.size());
                out += s.size();
            };
            auto number = [&out](std::int64_t value) { out = std::to_chars(out, out + 20, value).ptr; };
            if (!first_entry) *out++ = ',';
            first_entry = false;
            literal(prefix);
            literal(R"(,"start_ms":)");
            number(h.started_ms);
            literal(R"(,"ms":)");  // milliseconds with three decimals, from whole microseconds
            number(h.micros / 1000);
            const auto frac = h.micros % 1000;
            *out++ = '.';
            *out++ = static_cast<char>('0' + frac / 100);
            *out++ = static_cast<char>('0' + frac / 10 % 10);
            *out++ = static_cast<char>('0' + frac % 10);
            literal(R"(,"attempt":)");
            number(h.attempt);
            literal(R"(,"outcome":")");
            literal(outcome);
            *out++ = '"';
            text.resize(static_cast<std::size_t>(out - text.data()));
            // The parts that are usually absent, escaped as needed.
            if (!h.doc_id.empty()) {
                text += R"(,"doc_id":)";
                append_json_string(text, h.doc_id);
            }
            if (!h.detail.empty()) {
                text += R"(,"detail":)";
                append_json_string(text, h.detail);
            }
            text += '}';
        }
        text += ']';
    }
};

}  // namespace

JobBook::JobBook(Store& store, StoreGuard& guard, Logger& log, std::string pipeline_hash)
    : store_(store), guard_(guard), log_(log), pipeline_hash_(pipeline_hash), owner_(this_owner()) {}

void JobBook::start(Tracker& t, Document& doc) {
    // Keys built once: the attribute map's find() would build a string for each lookup.
    static const std::string message_id_key = "message_id", root_key = kRootJobAttribute;
    const auto message_id = doc.attributes.find(message_id_key);
    const auto root = doc.attributes.find(root_key);
    JobOpening opening;
    opening.id = t.doc_id;
    // An upstream stage's job (the email's, at intake) when the document crossed a stream.
    opening.root_id = root != doc.attributes.end() && !root->second.empty() ? std::string_view(root->second) : std::string_view(t.doc_id);
    opening.source = t.source_node;
    opening.filename = t.label;
    opening.owner = owner_;
    if (message_id != doc.attributes.end()) opening.email_id = message_id->second;
    opening.pipeline_hash = pipeline_hash_;
    // One store operation: created, or reopened for a redelivery.
    const auto previous = guard_.run([&] { return store_.open_job_from(opening); }, "job record");
    if (!previous) {
        t.first_delivery = true;
        return;
    }
    t.previous_status = *previous;
    doc.attributes[kPreviousStatusAttribute] = *previous;
    std::lock_guard lock(interrupted_mutex_);
    if (interrupted_.erase(t.doc_id)) reconciled_.fetch_add(1);  // re-driven by its source
}

JobEnd JobBook::end(Tracker& t) {
    auto delivery = std::make_shared<Delivery>();
    std::vector<DescendantOutcome>& mine = delivery->outcomes;
    bool failed, letters_missing;
    std::string failure;
    DocumentPtr claim;
    {
        std::lock_guard lock(t.mutex);
        mine = std::move(t.outcomes);  // every hop is done: nothing adds to them any more
        delivery->hops = std::move(t.hops);
        failed = t.failed;
        failure = t.reason;
        letters_missing = t.dead_letter_missing;
        claim = t.claim;
    }
    using K = DescendantOutcome::Kind;
    // One outcome per document id: the worst of its sinks (review beats delivered, a
    // failure beats both). The source document's own delivery (the email archived as
    // received) ranks below its skip too: an email with no claim attachment, archived, was
    // skipped by transform.mime, and says so.
    const std::string& source_id = t.doc_id;
    const auto rank = [&source_id](const DescendantOutcome& o) {
        return o.kind == K::Submitted && o.doc_id == source_id ? -1 : severity(o.kind);
    };
    const auto worst_first = [&rank](const DescendantOutcome& a, const DescendantOutcome& b) {
        return a.doc_id != b.doc_id ? a.doc_id < b.doc_id : rank(a) > rank(b);
    };
    // Usually in order already (one document, every sink alike): stable_sort would still
    // allocate its buffer.
    if (!std::is_sorted(mine.begin(), mine.end(), worst_first)) std::stable_sort(mine.begin(), mine.end(), worst_first);
    // References come from every sink (NCB, Drive, Sheets), not only the one whose outcome is kept.
    std::map<std::string, std::map<std::string, std::string>> references_by_doc;
    for (const auto& o : mine)
        for (const auto& [k, v] : o.references) references_by_doc[o.doc_id].emplace(k, v);
    // The outcomes and the timeline of this delivery stay structs (`delivery`): the job
    // writes them as text only when it is read or stored as text (Job::set_delivery).
    // An approval or a retry merges the fresh outcomes with the stored ones, as JSON.
    auto fresh_text = [&] {
        std::string text;
        delivery->append_outcomes(text);
        return text;
    };
    auto build_fresh = [&] { return nlohmann::json::parse(fresh_text()); };
    const std::shared_ptr<const DeliveryRecord> record = delivery;

    // Everything that does not depend on the stored job is built here, outside the store's
    // write: a backend may run that write under a lock every graph thread contends for (the
    // memory store's mutex) or more than once (an optimistic retry).
    nlohmann::json fresh_built = t.replaces ? build_fresh() : nlohmann::json();
    // derive() and summary_error() over the structs (the worst outcome of each document, the
    // first of its run in `mine`): the same answers without building or reading JSON.
    const char* status_built = nullptr;  // the status when no outcome is replaced
    std::string error_built;
    if (!t.replaces) {
        std::size_t counts[4] = {0, 0, 0, 0};  // by Kind, one per document
        std::size_t documents = 0;
        bool source_delivered = false;  // the job's own document, delivered (an archive of the email)
        for (std::size_t i = 0; i < mine.size(); ++i)
            if (i == 0 || mine[i].doc_id != mine[i - 1].doc_id) {
                ++counts[static_cast<int>(mine[i].kind)];
                ++documents;
                source_delivered |= mine[i].kind == K::Submitted && mine[i].doc_id == t.doc_id;
            }
        // Beside its parts' outcomes, the source's own delivery decides nothing (as derive()).
        if (source_delivered && documents > 1) --counts[static_cast<int>(K::Submitted)];
        const std::size_t n_failed = counts[static_cast<int>(K::Failed)], n_review = counts[static_cast<int>(K::Review)],
                          n_submitted = counts[static_cast<int>(K::Submitted)], n_skipped = counts[static_cast<int>(K::Skipped)];
        status_built = n_review ? "review" : (n_failed && n_submitted) ? "partial" : n_failed ? "failed"
                     : n_submitted ? "submitted" : n_skipped ? "skipped" : "submitted";
        if (documents == 0) {
            if (failed) {
                status_built = "failed";
                error_built = failure;
            }
        } else if (n_review + n_failed + n_skipped != 0) {  // a delivered document has no reason to give
            const std::string_view status = status_built;
            const K wanted = status == "review" ? K::Review : status == "skipped" ? K::Skipped : K::Failed;
            for (std::size_t i = 0; i < mine.size(); ++i) {
                const DescendantOutcome& o = mine[i];
                if ((i != 0 && o.doc_id == mine[i - 1].doc_id) || o.kind != wanted) continue;
                std::string line = wanted == K::Skipped ? o.node + ": " + o.reason : o.reason;
                if (!o.name.empty() && wanted != K::Skipped && documents > 1) line = o.name + ": " + line;
                error_built += (error_built.empty() ? "" : "; ") + line;
            }
            // A job in review that also lost an attachment: the reviewer is the person who
            // sees the job, so the failure is named too (else it showed only in the outcomes).
            if (wanted == K::Review)
                for (std::size_t i = 0; i < mine.size(); ++i) {
                    const DescendantOutcome& o = mine[i];
                    if ((i != 0 && o.doc_id == mine[i - 1].doc_id) || o.kind != K::Failed) continue;
                    error_built += "; " + (o.name.empty() ? std::string() : o.name + ": ") + "failed: " + o.reason;
                }
        }
    }
    int runs = 0;

    JobEnd result;
    // One member of an admin action's group writes at a time, so the last to write is the one
    // that derives the job's status from every member's outcomes.
    std::unique_lock<std::mutex> group_turn;
    bool last_of_group = true;
    if (t.group) {
        group_turn = std::unique_lock(t.group->mutex);
        last_of_group = ++t.group->settled >= t.group->size;
    }
    auto write = [&](Job& j) {
        const bool first_run = runs++ == 0;
        // The job's outcomes after this delivery: as JSON (an approval or a retry, merged
        // with the stored ones) or as the delivery's structs (status_built has the status).
        nlohmann::json outcomes;
        std::string merged_status;  // an approval's or a retry's, derived from the merged outcomes
        std::string_view status;
        bool no_outcomes;
        if (t.replaces) {  // an approval or a retry: the job's other outcomes stand
            nlohmann::json fresh = first_run ? std::move(fresh_built) : build_fresh();
            outcomes = nlohmann::json::array();
            // The documents this re-entry settles anew: the one it sent in and those it ended
            // with. Another document's outcome of the same kind is another re-entry's to replace
            // (an approval of two receipts is two): replaced here, a receipt still on its way
            // lost its outcome, and one NCB refused again ended `submitted`.
            std::set<std::string> settled_here{t.reentered_doc_id};
            for (const auto& o : fresh) settled_here.insert(o.value("doc_id", ""));
            std::map<std::string, nlohmann::json> replaced_references;  // by doc id
            std::set<std::string> replaced_held;                        // doc ids a receiving system holds
            for (auto& o : j.outcomes()) {
                const std::string doc_id = o.value("doc_id", "");
                if (kind_of(o.value("status", "")) != *t.replaces || !settled_here.count(doc_id)) {
                    outcomes.push_back(std::move(o));
                    continue;
                }
                if (o.value("held", false) == true) replaced_held.insert(doc_id);
                if (o.contains("references") && o["references"].is_object()) replaced_references[doc_id] = std::move(o["references"]);
            }
            for (auto& o : fresh) {
                // A retry at the audit node: the NCB reference its first delivery recorded on
                // this document's outcome stays there (fresh values win).
                const std::string doc_id = o.value("doc_id", "");
                if (auto r = replaced_references.find(doc_id); r != replaced_references.end())
                    for (auto& [key, value] : r->second.items())
                        if (!o.contains("references") || !o["references"].contains(key)) o["references"][key] = std::move(value);
                // A claim NCB holds, approved again and failed or parked this time: NCB holds
                // it still (transform.dedup reads the mark). Booked this time, it is plain.
                if (replaced_held.count(doc_id) && o.value("status", "") != "submitted") o["held"] = true;
                outcomes.push_back(std::move(o));
            }
            merged_status = derive(outcomes, t.doc_id);
            no_outcomes = outcomes.empty();
            if (no_outcomes && failed) merged_status = "failed";
            // Others of the same action are still on their way: the job stays as the action set
            // it until the last has settled (ReentryGroup).
            if (!last_of_group) merged_status = j.status;
            status = merged_status;
        } else {
            status = status_built;
            no_outcomes = mine.empty();
        }
        const bool all_skipped = status == "skipped" && !no_outcomes;
        if (all_skipped && is_terminal_status(t.previous_status) && t.previous_status != "skipped") {
            // The same document again, skipped as a duplicate of itself: its first outcome stands.
            j.status = t.previous_status;
            // A null references member is an empty object (Job): value() would throw on it.
            const int before = j.references.is_object() ? j.references.value("duplicate_deliveries", 0) : 0;
            j.references["duplicate_deliveries"] = before + 1;
            result.status = j.status;
            result.references = j.references;
            result.detail = j.last_error;
            return;
        }
        j.status = status;
        // approved_at says a reviewer's approval went out: not once the job is back in review
        // (NCB refused the corrected claim), nor once the pipeline alone delivered the
        // document anew (the source delivered it again, and a sink took it). Where every sink
        // answered from its ledger, the approved delivery stands.
        const bool delivered_anew = !t.replaces && std::any_of(delivery->hops.begin(), delivery->hops.end(), [](const HopRecord& h) {
            return h.result == HopRecord::Result::Delivered;
        });
        if (j.references.is_object() && (status == "review" || delivered_anew)) j.references.erase("approved_at");
        // The job's references: one value per key, or every distinct value when attachments differ.
        for (const auto& [doc_id, refs] : references_by_doc)
            for (const auto& [k, v] : refs) {
                auto& slot = j.references[k];
                if (slot.is_null() || slot == v) slot = v;
                else if (slot.is_array()) { if (std::find(slot.begin(), slot.end(), v) == slot.end()) slot.push_back(v); }
                else slot = nlohmann::json::array({slot, v});
            }
        if (t.replaces) {
            // An approval or a retry continues the job's timeline (a delivery starts it anew).
            std::string timeline = j.trace_text();
            std::string entries;
            delivery->append_trace(entries);
            if (timeline.size() > 2 && timeline.back() == ']') {
                if (entries.size() > 2) {  // "[...]": its entries follow the job's own
                    timeline.back() = ',';
                    timeline.append(entries, 1, std::string::npos);
                }
            } else {
                timeline = std::move(entries);
            }
            if (last_of_group) j.last_error = no_outcomes ? (failed ? failure : "") : summary_error(outcomes, merged_status);
            j.set_outcomes_text(docpipe::json_text(outcomes));
            j.set_trace_text(std::move(timeline));
        } else {
            j.last_error = error_built;
            j.set_delivery(record);
        }
        if (claim && !record_claim_on_job(*claim, j) && !claim->fields.empty()) j.fields = claim->fields;
        result.status = status;
        // Copied only when there is something to copy (null, no references, stays as built); a
        // repeated write resets what an earlier run left.
        if (!j.references.empty()) result.references = j.references;
        else if (!result.references.is_null()) result.references = nlohmann::json();
        result.detail = j.last_error;
    };
    try {
        // std::function keeps a closure of one pointer in place; `write` itself captures a dozen.
        guard_.run([&] { store_.modify_job(t.doc_id, [&write](Job& j) { write(j); }); }, "job record");
    } catch (const StoreError& e) {
        // Past the horizon: the source keeps the document (nack) so nothing is lost.
        result.ack = {false, fmt::format("the state store stayed unavailable for {} s, so the job record could not be written: {}",
                                         guard_.horizon().count() / 1000, e.what()), true};
        log_.log(LogLevel::Error, result.ack.reason, t.doc_id);
        return result;
    }
    // A member of a group that is not the last: its own documents' outcome, for its callback.
    if (result.status.empty() || !last_of_group) result.status = derive(build_fresh(), t.doc_id);  // or no job record (an admin re-entry of a deleted job)
    if (result.status == "failed") result.ack = {false, failure.empty() ? summary_error(build_fresh(), "failed") : failure};
    else if (letters_missing) result.ack = {false, failure + " (its dead letter could not be stored, so the source keeps the input)"};
    if (letters_missing) result.ack.keep_input = true;
    return result;
}

std::size_t JobBook::find_interrupted() {
    std::size_t found = 0;
    try {
        JobQuery q;
        q.status = "processing";
        q.limit = 1000;
        for (const auto& job : store_.list_jobs(q).jobs) {
            if (!owner_is_gone(job.owner, owner_)) continue;
            std::lock_guard lock(interrupted_mutex_);
            interrupted_.insert(job.id);
            ++found;
        }
    } catch (const StoreError& e) {
        log_.log(LogLevel::Warn, fmt::format("could not look for jobs left processing by an earlier run: {}", e.what()));
    }
    if (found)
        log_.log(LogLevel::Warn, fmt::format("{} job(s) were left processing by a process that stopped abruptly; their sources "
                                             "deliver them again, and any that are not are settled as failed", found));
    return found;
}

bool JobBook::amend_reference(const std::string& job_id, const std::string& doc_id, const std::string& key, const std::string& value) {
    bool amended = false;
    try {
        store_.modify_job(job_id, [&](Job& j) {
            amended = false;  // `change` may run again (optimistic retry)
            nlohmann::json outcomes = j.outcomes();
            std::optional<nlohmann::json> old;
            for (auto& o : outcomes) {
                if (o.value("doc_id", "") != doc_id) continue;
                nlohmann::json& refs = o["references"];
                if (!refs.is_object()) refs = nlohmann::json::object();
                if (refs.contains(key)) old = refs[key];
                refs[key] = value;
                amended = true;
            }
            if (!amended) return;
            j.set_outcomes_text(docpipe::json_text(outcomes));
            nlohmann::json& slot = j.references[key];
            if (slot.is_null() || (old && slot == *old)) {
                slot = value;
            } else if (slot.is_array()) {
                const auto stale = old ? std::find(slot.begin(), slot.end(), *old) : slot.end();
                if (stale != slot.end()) *stale = value;
                else if (std::find(slot.begin(), slot.end(), value) == slot.end()) slot.push_back(value);
            } else if (slot != value) {
                slot = nlohmann::json::array({slot, value});
            }
        });
    } catch (const std::exception& e) {
        log_.log(LogLevel::Warn, fmt::format("could not set {} on the job's record: {}", key, e.what()), job_id);
        return false;
    }
    return amended;
}

std::size_t JobBook::return_interrupted_approvals() {
    std::size_t returned = 0;
    try {
        JobQuery q;
        q.status = "approved";
        q.limit = 1000;
        for (const auto& job : store_.list_jobs(q).jobs) {
            if (!owner_is_gone(job.owner, owner_)) continue;
            bool changed = false;
            store_.update_job(job.id, [&](Job& j) {
                changed = j.status == "approved" && owner_is_gone(j.owner, owner_);
                if (!changed) return;
                j.status = "review";
                if (j.references.is_object()) {  // the next approval's; this one's are in the audit
                    j.references.erase("reviewer_notes");
                    j.references.erase("approved_at");
                }
                j.last_error = "the approval was not delivered: the process stopped first; approve it again (the corrections "
                               "made are kept)";
            });
            returned += changed;
        }
    } catch (const StoreError& e) {
        log_.log(LogLevel::Warn, fmt::format("could not look for approvals left undelivered by an earlier run: {}", e.what()));
    }
    if (returned)
        log_.log(LogLevel::Warn, fmt::format("{} approved job(s) were not delivered before their process stopped: back in review",
                                             returned));
    reconciled_.fetch_add(returned);
    return returned;
}

std::size_t JobBook::settle_unclaimed() {
    std::set<std::string> left;
    {
        std::lock_guard lock(interrupted_mutex_);
        left.swap(interrupted_);
    }
    std::size_t settled = 0;
    for (const auto& id : left) {
        try {
            bool changed = false;
            store_.update_job(id, [&](Job& j) {
                changed = j.status == "processing" && owner_is_gone(j.owner, owner_);
                if (!changed) return;
                j.status = "failed";
                j.last_error = "interrupted: the process handling this job stopped abruptly and its source did not deliver it "
                               "again; re-drop the input, or retry the job if it has dead letters";
            });
            settled += changed;
        } catch (const StoreError& e) {
            log_.log(LogLevel::Warn, fmt::format("could not settle an interrupted job: {}", e.what()), id);
        }
    }
    reconciled_.fetch_add(settled);
    return settled;
}

}  // namespace docpipe::core
