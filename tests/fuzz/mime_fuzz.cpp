// Fuzz target: one email's bytes through the MIME parser (plugins/mail/email.cpp, GMime),
// as transform.mime does with every message a source delivers, plus the pure helpers it
// uses on attacker-chosen text (attachment names, HTML bodies).
//
// parse_email promises never to throw for a malformed email; on top of crashes and
// sanitizer reports, the target aborts when a kept attachment's name is not sanitised (a
// path separator or control character would let a sender pick where a sink writes it).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "email.hpp"
#include "fuzz_check.hpp"

using namespace docpipe::mail;

namespace {

// Emails in the corpus are small; big inputs only slow each run down.
constexpr std::size_t kMaxInput = 64 * 1024;

void check_filename(const std::string& name) {
    FUZZ_CHECK(!name.empty() && name.size() <= 150);
    for (unsigned char c : name) FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '/' && c != '\\');
    FUZZ_CHECK(name.front() != '.');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > kMaxInput) return 0;
    // Lower limits than production, so the limit paths are reached by small inputs too.
    EmailLimits limits;
    limits.max_attachments = 4;
    limits.max_parts = 40;
    limits.min_image_bytes = 16;
    limits.max_attachment_bytes = 16 * 1024;
    limits.max_body_chars = 2000;
    const ParsedEmail email = parse_email(data, size, limits);
    FUZZ_CHECK(email.body_text.size() <= limits.max_body_chars);
    FUZZ_CHECK(email.subject.size() <= 1000);
    for (const Attachment& a : email.attachments) {
        check_filename(a.filename);
        FUZZ_CHECK(a.depth >= 0);
    }

    const std::string text(reinterpret_cast<const char*>(data), size);
    check_filename(sanitize_filename(text.substr(0, 400), "attachment"));
    (void)html_to_text(text);
    return 0;
}
