// docpipe SDK — masking the secrets a server echoes back, before its words are logged or shown.
//
// A server's error text may quote what it was sent: an IMAP server repeats a LOGIN line, a
// proxy's error page quotes the Authorization header, an API's 4xx repeats the request with
// its key. Components put such text in logs, in /health and in review reasons, which an
// operator reads and may paste into a ticket. The process log's own redaction
// (redact_personal_data in core) knows personal data, not this component's credentials, so a
// component that quotes a server passes the text through mask_secrets() with the secrets it
// sent, at the place where it quotes it.
//
// Contract:
// - A pure function: no state, safe from any thread. The caller owns the secrets; they are
//   only read during the call.
// - Every occurrence of each non-empty secret is replaced by `mask`, as sent and in the forms
//   a server echoes it in: percent-encoded (a form body or URL: "1//0g" as "1%2F%2F0g", hex
//   upper or lower case, a space as "+") and JSON-escaped ("1\/\/0g"). Longer forms are
//   masked first, so a secret that contains another (a quoted password, the password) is
//   masked whole rather than leaving its quotes around a partial mask.
// - It cannot loop: the search goes on after each mask, even where the mask itself contains
//   a secret.
// - It does not decide what is too short to be a secret: a caller whose secret may be short
//   enough to match ordinary words (a 2-character key) leaves it out.
// - Header-only: not part of the plugin ABI.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace docpipe {

inline constexpr std::string_view kSecretMask = "[secret]";

namespace detail {
// `secret` as a form body or URL carries it: unreserved characters as they are, a space as
// '+', everything else %XX (upper- or lower-case hex).
inline std::string percent_encoded(std::string_view secret, bool lower_hex) {
    const char* hex = lower_hex ? "0123456789abcdef" : "0123456789ABCDEF";
    std::string out;
    for (const char c : secret) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else if (c == ' ') {
            out += '+';
        } else {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    return out;
}
// `secret` inside a JSON string: quotes, backslashes and (as some encoders write it) '/'
// escaped with a backslash.
inline std::string json_escaped(std::string_view secret) {
    std::string out;
    for (const char c : secret) {
        if (c == '"' || c == '\\' || c == '/') out += '\\';
        out += c;
    }
    return out;
}
}  // namespace detail

inline std::string mask_secrets(std::string text, const std::vector<std::string_view>& secrets,
                                std::string_view mask = kSecretMask) {
    std::vector<std::string> forms;
    for (const std::string_view secret : secrets) {
        if (secret.empty()) continue;
        forms.emplace_back(secret);
        for (std::string form : {detail::percent_encoded(secret, false), detail::percent_encoded(secret, true), detail::json_escaped(secret)})
            if (form != secret) forms.push_back(std::move(form));
    }
    std::stable_sort(forms.begin(), forms.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const std::string& secret : forms) {
        if (secret.empty()) continue;
        for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + mask.size()))
            text.replace(at, secret.size(), mask);
    }
    return text;
}

}  // namespace docpipe
