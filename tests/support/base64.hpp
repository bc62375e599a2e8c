// Base64 as MIME bodies carry it (RFC 2045: lines of 76 characters, CRLF), for tests that
// build .eml files by hand.
#pragma once

#include <string>

namespace docpipe::test {

inline std::string base64_mime(const std::string& in) {
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int val = 0, bits = -6;
    for (unsigned char c : in) {
        val = (val << 8) + c;
        bits += 8;
        while (bits >= 0) {
            out += k[(val >> bits) & 0x3F];
            bits -= 6;
        }
    }
    if (bits > -6) out += k[((val << 8) >> (bits + 8)) & 0x3F];
    while (out.size() % 4) out += '=';
    std::string wrapped;
    for (std::size_t i = 0; i < out.size(); i += 76) wrapped += out.substr(i, 76) + "\r\n";
    return wrapped;
}

}  // namespace docpipe::test
