// Reading the files out of an archive attachment with libarchive: a claimant who sends ten
// receipts often zips them, and an email whose only attachment was
// "receipts.zip" was recorded as "skipped: no claim attachment" and moved to processed/, its
// claim unseen.
//
// read_archive() is a pure function over the bytes (thread-safe: each call has its own
// libarchive reader). It never throws for a damaged or hostile archive; what cannot be read
// is said in the listing, entry by entry or for the archive as a whole.
//
// Bounds, because an archive is a decompression bomb as easily as a receipt folder:
// - at most `max_entries` files are listed (and at most 4 x max_entries + 100 headers of
//   any kind read: folders, links, macOS metadata); past that the archive is not read
//   further and the listing says so;
// - only the entries `want` asks for are decompressed (of one whose name says nothing, its
//   first 4 KB, and the rest only when they show a receipt), each one at most `max_entry_bytes`
//   (one byte more is read to tell a file over the limit, which is then dropped). In a ZIP,
//   an entry not wanted is stepped over by its compressed size when its header gives it;
//   when it does not (a data descriptor, read without the central directory), and in a
//   compressed archive (one stream: a .tar.gz, or a .zip.bz2, which libarchive reads as a
//   streamed ZIP), libarchive can find its end only by decompressing it, so it is read into
//   nothing and those bytes count too;
// - every byte decompressed counts towards `max_total_bytes` (in a compressed archive, the
//   headers' too: the stream's position is charged); past it, the rest of the archive is not
//   read and the listing says so.
// Read: ZIP (with ZIP64 and the Deflate, BZip2, LZMA, XZ and stored methods; libarchive 3.6
// does not read Deflate64, which Windows uses for ZIPs over 2 GB: such a file "cannot be
// decompressed"), tar, plain or compressed with gzip, bzip2 or xz, and one file compressed
// alone with those ("receipt.jpg.gz": listed as format "file", one entry with no path, when
// its first 4 KB show what `read_rest` wants; then its compression's checks run over what
// the file may take). Data after the last gzip member or bzip2 stream, other than zeros, are
// damage, in a tar too (a member whose header was damaged ends both decoders silently). Anything compressed twice
// is refused (only one layer's checks could run). A compressed archive's
// own checks (gzip's CRC-32, which libarchive does not check; bzip2 and xz to their end) are
// run before it is read; a plain tar holds no checksum of its files, which then go on as a
// file attached directly would, to the image decoders' own damage checks. A tar must end
// with its end marker, with nothing after it but zeros: libarchive takes a tar that stops
// after any whole file as ended, and stops at the first zero block (two tars joined with cat).
// 7-Zip and RAR are not opened: libarchive reads a 7-Zip archive's whole index, compressed,
// before its first file (a crafted index makes that unbounded); and it checks no checksum of
// a file stored in a RAR, nor says when a RAR is one volume of several, so a damaged or
// partial receipt would go on as whole. Checking both with a header walk of our own was
// weighed (session 39) and not done: libarchive's RAR readers are where its security fixes
// keep landing (Debian 12's 2026 updates: CVE-2026-4111, a RAR5 file that loops forever in
// archive_read_data; CVE-2026-4424, a heap over-read in the RAR reader), and this reader runs
// unattended on whatever a stranger emails. A claimant asked for a ZIP loses a day; a crash
// loop loses the inbox.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/document.hpp"

namespace docpipe::mail {

struct ArchiveLimits {
    std::size_t max_entries = 500;
    std::size_t max_entry_bytes = 25u << 20;
    std::size_t max_total_bytes = 100u << 20;
    // The limit a reason names, when max_total_bytes is what is left of a larger budget (an
    // email's max_archive_bytes); 0: max_total_bytes.
    std::size_t budget_named = 0;
};

// What to do with a file, by its path: step over it, read it, or read its first 4 KB and let
// `read_rest` decide from them (a file whose name says nothing).
enum class ArchiveWant { Skip, Read, Sniff };

struct ArchiveEntry {
    std::string path;     // as stored, made valid UTF-8 ('_' for bytes that are not)
    Bytes bytes;          // the decompressed file, when wanted and read whole
    Bytes head;           // its first bytes, when sniffed and not read further
    std::string problem;  // why it was not read ("" = read, or not wanted)
    bool wanted = false;
    bool encrypted = false;
};

struct ArchiveListing {
    std::vector<ArchiveEntry> entries;  // the sender's files, in the archive's order (no folders, links or macOS metadata)
    std::string format;             // "zip" or "tar", once a header was read; "file" for one file compressed alone
    std::string error;              // the archive as a whole could not be read (further), and why
    bool too_many_entries = false;  // more than max_entries; not read further
    std::size_t decompressed = 0;   // bytes decompressed, files kept or not
};

// At most how many records a ZIP's central directory can hold (counted up to `most` + 1): the
// directory-record signatures anywhere in it. See read_archive.
std::uint64_t central_directory_records(const Bytes& zip, std::uint64_t most);

// `want(path)` says which files to decompress (e.g. images and PDFs by their extension).
ArchiveListing read_archive(const Bytes& bytes, const ArchiveLimits& limits, const std::function<ArchiveWant(std::string_view path)>& want,
                    const std::function<bool(const Bytes& head)>& read_rest = {});

}  // namespace docpipe::mail
