// docpipe SDK — one header of a raw email, read before the email is parsed.
//
// A source that takes emails (Gmail, IMAP, a maildir, a drop folder of .eml files) names
// each document with its Message-ID, so that the job of an email that transform.mime then
// cannot parse is still found by that id (GET /api/v1/jobs?email_id=..., the dedup of a
// resend) rather than carrying an empty one. The full parse stays with transform.mime.
//
// Contract:
// - Pure functions of the bytes given: no state, safe from any thread; nothing is kept.
// - Only the header block is looked at, and at most its first 256 KiB: an email without a
//   blank line after its headers, or a binary file, costs no more than that.
// - Folded lines are unfolded; names are matched without regard to case, and with white
//   space before the colon (RFC 5322's obsolete syntax); the first header of that name
//   counts. Encoded words (=?utf-8?...?=) are left as they are.
// - Header-only: not part of the plugin ABI.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>

namespace docpipe {

// The value of the first header `name` of an RFC 5322 message (unfolded, trimmed), or "".
inline std::string rfc822_header(std::string_view raw, std::string_view name) {
    const std::size_t limit = std::min<std::size_t>(raw.size(), 256 * 1024);
    std::string found;
    bool in_it = false;
    std::size_t pos = 0;
    while (pos < limit) {
        std::size_t end = raw.find('\n', pos);
        if (end == std::string_view::npos || end > limit) end = limit;
        std::string_view line = raw.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos = end + 1;
        if (line.empty()) break;  // the end of the header block
        if (line.front() == ' ' || line.front() == '\t') {
            if (in_it) found.append(" ").append(line.substr(1));
            continue;
        }
        if (in_it) break;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon < name.size()) continue;
        if (line.find_first_not_of(" \t", name.size()) != colon) continue;
        bool same = true;
        for (std::size_t i = 0; i < name.size() && same; ++i)
            same = std::tolower(static_cast<unsigned char>(line[i])) == std::tolower(static_cast<unsigned char>(name[i]));
        if (same) {
            in_it = true;
            found = std::string(line.substr(colon + 1));
        }
    }
    const auto first = found.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    const auto last = found.find_last_not_of(" \t");
    return found.substr(first, last - first + 1);
}

// The Message-ID as transform.mime (GMime) reads it: what is inside the first <...> with its
// white space and comments left out ("<abc@x> (added by relay)": "abc@x"); with no brackets,
// the first word that is not a comment. "" when there is none.
inline std::string rfc822_message_id(std::string_view raw) {
    const std::string value = rfc822_header(raw, "message-id");
    std::string bare;  // comments ("(...)", nested) dropped
    int depth = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (c == '\\' && depth > 0) ++i;  // a quoted character inside a comment
        else if (c == '(') ++depth;
        else if (c == ')' && depth > 0) --depth;
        else if (depth == 0) bare.push_back(c);
    }
    const auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    std::string id;
    if (const auto open = bare.find('<'); open != std::string::npos) {
        const auto close = bare.find('>', open + 1);
        for (std::size_t i = open + 1; i < (close == std::string::npos ? bare.size() : close); ++i)
            if (!is_space(bare[i])) id.push_back(bare[i]);
        return id;
    }
    std::size_t i = 0;
    while (i < bare.size() && is_space(bare[i])) ++i;
    while (i < bare.size() && !is_space(bare[i]) && bare[i] != ';') id.push_back(bare[i++]);
    return id;
}

}  // namespace docpipe
