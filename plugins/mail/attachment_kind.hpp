// What an email attachment (or a file in a ZIP) is, for transform.mime: a claim file (image
// or PDF), a wrapper docpipe opens (ZIP and tar archives, opaque-signed S/MIME, Outlook's
// winmail.dat), a wrapper it cannot open (7-Zip, RAR, PGP-encrypted files), or something else.
//
// Senders label files loosely: phones and webmail send receipts as
// "application/octet-stream", named "receipt" or "WhatsApp Image ... .jfif". What the type
// and name say is used when they say something; when they do not, the first bytes decide.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace docpipe::mail {

enum class AttachmentKind {
    Claim,            // an image or a PDF; `media_type` says which
    Archive,          // ZIP or tar (plain, gzip, bzip2, xz), or one file gzip/bzip2/xz compressed: opened (archive.hpp)
    Pkcs7,            // S/MIME, opened when signed (smime.hpp)
    Tnef,             // Outlook's winmail.dat: opened (tnef.hpp)
    UnopenedArchive,  // 7-Zip, RAR: not read
    PgpEncrypted,     // a .gpg/.pgp file or an armoured PGP message: not read
    Unknown,          // nothing declared says what it is: look at its bytes
    Other,            // a document of another kind (text, a spreadsheet, a signature): skipped
};

struct Classified {
    AttachmentKind kind = AttachmentKind::Other;
    std::string media_type;  // for Claim: "image/jpeg", "application/pdf", ...
};

// By the declared media type and the file name.
Classified classify_declared(std::string_view media_type, std::string_view filename);

// By the first bytes, for what classify_declared() calls Unknown. Never returns Unknown.
Classified classify_bytes(const std::uint8_t* data, std::size_t size);

// Whether the bytes start a gzip, bzip2 or xz stream (a compressed tar, or one file
// compressed alone).
bool compressed_stream(const std::uint8_t* data, std::size_t size);

// Why a kind that is not read cannot be, and what to ask the sender ("" for the others).
std::string not_read_reason(AttachmentKind kind);

}  // namespace docpipe::mail
