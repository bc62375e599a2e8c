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
// - Every occurrence of each non-empty secret is replaced by `mask`. Longer secrets are
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

inline std::string mask_secrets(std::string text, std::vector<std::string_view> secrets,
                                std::string_view mask = kSecretMask) {
    std::stable_sort(secrets.begin(), secrets.end(),
                     [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
    for (const std::string_view secret : secrets) {
        if (secret.empty()) continue;
        for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + mask.size()))
            text.replace(at, secret.size(), mask);
    }
    return text;
}

}  // namespace docpipe
