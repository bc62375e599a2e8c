// Claim documents: where transform.claims puts its results in a Document, and the NCB
// record every delivery sink builds from them.
//
// Contract
// - Layout of Document::fields after transform.claims (and transform.confidence_router):
//     fields["claim"]            {name: {"value", "confidence" (0..1), "source", "provenance"}}
//     fields["confidence"]       overall confidence (0..1) from the required fields
//     fields["confidence_level"] "high" | "medium" | "low" (set by the router)
//     fields["warnings"]         [text]; fields["missing"]: required fields with no value
//   Field names: member_id, member_name, policy_number, provider_name, provider_address,
//   service_date (YYYY-MM-DD), receipt_number, total_amount (number), currency, sst_amount,
//   gst_amount, itemized_charges ([{description, amount}]).
// - ncb_record() is a pure function: no I/O, no clock (the caller passes the submission
//   time), safe from any thread. It never invents a value: a missing required value is
//   reported in NcbRecord::missing and left out of the record, so the caller can send the
//   document to review with that reason instead of submitting a placeholder.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "docpipe/document.hpp"

namespace docpipe::claim {

inline constexpr const char* kClaimKey = "claim";

// The value of a claim field, if the document has one.
std::optional<nlohmann::json> field_value(const Document& doc, const std::string& name);

struct NcbRecord {
    nlohmann::json record = nlohmann::json::object();
    std::vector<std::string> missing;  // e.g. "Invoice Number (receipt_number)"
    bool complete() const { return missing.empty(); }
};

// `utc_offset_minutes` is the time zone the insurer expects ("Submission Date" is ISO 8601
// with that offset; Malaysia is +08:00 = 480).
NcbRecord ncb_record(const Document& doc, std::chrono::system_clock::time_point submitted_at, int utc_offset_minutes = 480);

// "2024-12-24T14:30:00+08:00"
std::string iso8601_with_offset(std::chrono::system_clock::time_point t, int utc_offset_minutes);

}  // namespace docpipe::claim
