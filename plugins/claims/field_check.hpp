// Checking a reviewer's corrections to claim fields with the parsers extraction uses
// (amount.hpp, date.hpp): a corrected total must read as an amount the way a receipt's would,
// a corrected date must be a real calendar date in the claim layout's YYYY-MM-DD.
//
// Pure function, thread-safe.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace docpipe::claims {

// field name -> what is wrong, for each bad value in `corrections` (field name -> value).
// Names outside the claim layout (docpipe/claim.hpp) are refused too: a typo there would
// otherwise be accepted and silently ignored by every sink. A service date after `today`
// (UTC, a day's grace for time zones) and a blank policy, member or receipt number are
// refused: NCB would book the first and refuse the second.
std::map<std::string, std::string> check_claim_corrections(const nlohmann::json& corrections);

// The accepted corrections in their stored form: amounts as numbers (sen exact), text
// trimmed. Call with values check_claim_corrections() found no fault in.
nlohmann::json normalize_claim_corrections(const nlohmann::json& corrections);

}  // namespace docpipe::claims
