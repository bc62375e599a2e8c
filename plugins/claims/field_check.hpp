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
// otherwise be accepted and silently ignored by every sink.
std::map<std::string, std::string> check_claim_corrections(const nlohmann::json& corrections);

}  // namespace docpipe::claims
