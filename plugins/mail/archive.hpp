// Reading the files out of a ZIP attachment with libarchive: a claimant who sends ten
// receipts often zips them, and an email whose only attachment was "receipts.zip" was
// recorded as "skipped: no claim attachment" and moved to processed/, its claim unseen.
//
// read_zip() is a pure function over the bytes (thread-safe: each call has its own
// libarchive reader). It never throws for a damaged or hostile archive; what cannot be read
// is said in the listing, entry by entry or for the archive as a whole.
//
// Bounds, because a ZIP is a decompression bomb as easily as a receipt folder:
// - at most `max_entries` entries are looked at; the rest are counted, not read;
// - only the entries `wanted` asks for are decompressed (the others are skipped by their
//   compressed size), each one at most `max_entry_bytes` (one byte more is read to tell a
//   file over the limit, which is then dropped);
// - the decompressed bytes of one archive stop at `max_total_bytes`; later entries are
//   listed with that reason.
// Only ZIP is read (with ZIP64 and the usual Deflate, Deflate64, BZip2, LZMA, XZ and stored
// methods). 7-Zip and RAR are not opened: skipping an entry in their solid blocks means
// decompressing it, which no byte budget bounds without reading the whole archive.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/document.hpp"

namespace docpipe::mail {

struct ZipLimits {
    std::size_t max_entries = 500;
    std::size_t max_entry_bytes = 25u << 20;
    std::size_t max_total_bytes = 100u << 20;
};

struct ZipEntry {
    std::string path;     // as stored, made valid UTF-8 ('_' for bytes that are not)
    Bytes bytes;          // the decompressed file, when wanted and read whole
    std::string problem;  // why it was not read ("" = read, or not wanted)
    bool wanted = false;
    bool encrypted = false;
};

struct ZipListing {
    std::vector<ZipEntry> entries;  // regular files only, in the archive's order
    std::string error;              // the archive as a whole could not be read (further), and why
    std::size_t not_listed = 0;     // entries past max_entries
};

// `wanted(path)` says which files to decompress (e.g. images and PDFs by their extension).
ZipListing read_zip(const Bytes& bytes, const ZipLimits& limits, const std::function<bool(std::string_view path)>& wanted);

// Whether a part is a ZIP archive: by its media type, or by its name when the type says
// nothing ("application/octet-stream").
bool is_zip(std::string_view media_type, std::string_view filename);

// 7-Zip and RAR archives (by media type or name): not opened, see above.
bool is_unopened_archive(std::string_view media_type, std::string_view filename);

}  // namespace docpipe::mail
