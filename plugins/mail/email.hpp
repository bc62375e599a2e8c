// Parsing one RFC 822 email with GMime into what the claims pipeline needs: the headers
// (decoded to UTF-8), the body as plain text, and the claim attachments.
//
// The claim attachments are found where senders put them: as parts, inside forwarded
// messages, inside ZIP and tar attachments (archive.hpp), inside Outlook's winmail.dat (tnef.hpp)
// and inside opaque-signed S/MIME emails (smime.hpp; the signature is not verified).
//
// parse_email() is a pure function over the bytes (thread-safe; GMime is initialised once
// per process). It never throws for a malformed email: GMime reads what can be read, and
// what cannot is reported in ParsedEmail::problems. Limits are applied while walking the
// MIME tree, so a message with thousands of parts is refused without decoding them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "docpipe/context.hpp"
#include "docpipe/document.hpp"

namespace docpipe::mail {

// GMime reports through GLib's logging, which writes "gmime-CRITICAL **: ..." straight to
// stderr. The mail components route those messages to a node's logger instead: the most
// recently registered one (the process has one GLib log, not one per node). Register in a
// constructor, unregister with the same pointer in the destructor. Thread-safe.
void route_library_messages_to(Logger* logger);
void stop_routing_library_messages_to(Logger* logger);

struct Attachment {
    std::string filename;    // sanitised: no directories, no control characters
    std::string media_type;  // e.g. "image/jpeg"
    Bytes bytes;             // decoded content
    std::string skipped;     // why it is not a claim attachment ("" = it is one)
    bool inline_part = false;
    int depth = 0;           // 0 = this email; 1 = inside a forwarded message/rfc822
    std::string archive;     // the archive or winmail.dat it came out of ("" = none), e.g. "winmail.dat/receipts.zip"

    // How reasons name it: "receipts.zip/IMG_1.jpg" for a file from an archive.
    std::string shown_name() const { return archive.empty() ? filename : archive + "/" + filename; }
};

struct EmailLimits {
    std::size_t max_attachments = 20;          // claim attachments per email
    std::size_t max_parts = 500;               // MIME parts walked
    std::size_t min_image_bytes = 8 * 1024;    // smaller images are logos and signatures
    std::size_t max_attachment_bytes = 25u << 20;
    std::size_t max_archive_bytes = 100u << 20;  // what one email's archives may decompress to
    std::size_t max_body_chars = 100'000;
};

struct ParsedEmail {
    std::string message_id, from, to, subject;
    std::string date_iso;      // "2024-12-24T10:00:00+08:00", "" when absent or unreadable
    std::string body_text;     // text/plain, else HTML or RTF converted to text, else a winmail.dat's body; then the
                               // first forwarded (attached) email's text, under a "Forwarded message" line
    std::vector<Attachment> attachments;  // every leaf part that has a file name or is an image/PDF
    std::vector<std::string> problems;    // what GMime could not read
    // The problems that may have hidden a claim attachment, each naming the part or file: a
    // multipart without a boundary (or whose boundary never appears), an image/PDF whose
    // base64 cannot be decoded, an unknown Content-Transfer-Encoding, an encrypted email
    // (PGP/MIME or S/MIME), a damaged Outlook TNEF attachment (winmail.dat), a 7-Zip or RAR archive,
    // an archive that is damaged, or an image/PDF in one that is password-protected or cannot
    // be decompressed. Also in `problems`.
    // An email with no claim attachment and one of these fails as bad input (a person must
    // look), where one with no attachment at all is only skipped.
    std::vector<std::string> unreadable;
    // What could not be read and is no entry of `attachments`, named beside them: the part of
    // `unreadable` that is no attachment (an encrypted PGP/MIME body, a multipart without its
    // boundary), and a winmail.dat's body that could not be read (where the member id may be;
    // only here, since a body hides no attachment and does not fail the email).
    std::vector<std::string> unreadable_elsewhere;
    bool too_many_parts = false;
};

ParsedEmail parse_email(const std::uint8_t* data, std::size_t size, const EmailLimits& limits = {});

// `in` with every byte that is not part of valid UTF-8 (nor an overlong form or a surrogate)
// replaced by '_': names from ZIPs and senders go into JSON attributes.
std::string valid_utf8(std::string_view in);

// "../../etc/passwd" -> "passwd"; invalid UTF-8 made valid, control characters, path
// separators and leading dots removed; at most 150 bytes; "" becomes `fallback`.
std::string sanitize_filename(const std::string& name, const std::string& fallback);

// Plain text of an HTML body: tags dropped, block elements to line breaks, table cells
// separated, common entities decoded. Not a browser; enough for claim emails.
std::string html_to_text(const std::string& html);

}  // namespace docpipe::mail
