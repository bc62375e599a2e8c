// A sink's delivery-ledger entry: what the sink delivered, kept in the state store under
// "ledger/<node>/<doc id>" ("<doc id>@parked" for a document a sink before it parked), so a
// redelivery (a crash, a retry, an approval repeated after a restart) does not send it twice.
//
// The text, one item per line:
//   "submitted@<ISO 8601>" or "review@<ISO 8601>"  what the sink did, and when
//   the references the receiving system gave, as a JSON object  ("{}" when a later line follows)
//   the claim values delivered, as a JSON object                  (an approved claim only)
// Entries written before the third line existed have one or two lines; they read as having
// no recorded values, and nothing is compared for them.
//
// Why the values: a reviewer who approves a claim again after a restart (its first approval
// was delivered, the process stopped before the job settled) may change a value. The ledger
// answers "delivered" and the sink is not called, so NCB keeps the first values. With the
// values recorded, the runtime sees the difference and parks the claim for a person instead
// of calling it submitted with values NCB never received (GraphExecutor::run_sink).
//
// Pure functions: no I/O, thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "docpipe/document.hpp"

namespace docpipe::core {

struct LedgerEntry {
    bool parked = false;  // "review@": the sink parked the document for a person
    std::string at;       // ISO 8601, as written
    std::map<std::string, std::string> references;
    nlohmann::json values;  // null: not recorded
};

LedgerEntry parse_ledger_entry(std::string_view text);

// Appends the lines after "<status>@<time>": the references (if any, or if values follow)
// and the values (unless null).
void append_ledger_details(std::string& entry, const std::map<std::string, std::string>& references, const nlohmann::json& values);

// The claim values a document carries, {field: value}: fields["claim"] for a claim document
// (docpipe/claim.hpp), else the top-level fields; a field written as {"value": ...} counts by
// its value, so a confidence or provenance that changed does not count as a new value.
nlohmann::json claim_values(const Document& doc);

// The values that differ between what was delivered and what a document carries now, for a
// person to read: "total_amount: 12.5 delivered, 13 now; ..." ("" when they agree).
std::string describe_value_differences(const nlohmann::json& delivered, const nlohmann::json& now);

}  // namespace docpipe::core
