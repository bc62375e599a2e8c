// Reading the files out of an Outlook TNEF attachment (winmail.dat, application/ms-tnef).
// Outlook sends an email written in its "rich text" format as a winmail.dat part, with the
// sender's files inside it; read only as a name, a claim sent that way went to a person.
//
// TNEF (Microsoft's MS-OXTNEF) is a run of records: a level (message or attachment), an
// attribute id, a length, that many bytes and a 16-bit checksum of them. An attachment
// begins at its "rendering" record; its file name is in its title record (8.3, in the
// sender's code page) and again, long and often UTF-16, in its MAPI property record, and its
// bytes are in its data record. An attached Outlook item (a forwarded email) is a TNEF stream
// of its own inside the MAPI property PR_ATTACH_DATA_OBJ, and is read the same way. The
// message's body is kept for an email that Exchange sent as TNEF alone, with no text part of
// its own: its plain text (attBody, or PR_BODY among its properties), else its HTML
// (PR_HTML), else its compressed rich text (PR_RTF_COMPRESSED, read by rtf.hpp).
//
// Written here rather than with libytnef (Debian's 2.0): that library parses into fixed
// structures with a record of out-of-bounds CVEs, and prints its errors to stdout. This
// reader takes only what a claim needs (names, media types, bytes), checks every length
// against the bytes left before it reads, and copies nothing it does not keep.
//
// read_tnef() is a pure function over the bytes (thread-safe). It never throws for a damaged
// or hostile stream: what cannot be read is said in the listing, file by file or for the
// stream as a whole, and the files read before a damaged record are kept.
//
// Bounds: at most `max_files` files are listed (the stream is not read further past them);
// a file over `max_file_bytes` is listed without its bytes; Outlook items are opened at
// most `max_nesting` deep. TNEF is not compressed, so the files it yields are never more
// than its own size; only the rich-text body is, and it is decompressed to at most
// `max_file_bytes` of RTF.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "docpipe/document.hpp"

namespace docpipe::mail {

struct TnefLimits {
    std::size_t max_files = 500;
    std::size_t max_file_bytes = 25u << 20;
    int max_nesting = 4;
};

struct TnefFile {
    std::string name;        // the long name where Outlook gave one, else the 8.3 title; valid UTF-8, not sanitised
    std::string media_type;  // PR_ATTACH_MIME_TAG as the sender wrote it, "" when absent
    std::vector<std::string> items;  // the names of the attached Outlook items it came from, outermost first (none: the email itself)
    Bytes bytes;             // the file, when read whole
    std::string problem;     // why it was not read ("" = read)
};

struct TnefListing {
    std::vector<TnefFile> files;  // in the stream's order, attached items' files after the item's place
    std::string error;            // the stream could not be read (to its end), and why
    bool too_many_files = false;  // more than max_files; not read further
    std::string body;             // the message's body as text: attBody or PR_BODY, else its HTML or rich text (RTF); "" when none
    std::string body_problem;     // why the rich-text body could not be read whole ("" = it could, or there is none)
};

TnefListing read_tnef(const Bytes& bytes, const TnefLimits& limits);

}  // namespace docpipe::mail
