#include "archive.hpp"

#include "attachment_kind.hpp"  // compressed_stream
#include "email.hpp"            // valid_utf8

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cctype>
#include <clocale>
#include <cstring>
#include <locale.h>
#include <memory>
#include <optional>

#include <bzlib.h>
#include <fmt/core.h>
#include <zlib.h>

namespace docpipe::mail {

namespace {

struct ReaderDeleter {
    void operator()(struct archive* a) const { archive_read_free(a); }
};

std::string reader_error(struct archive* a, const char* fallback) {
    const char* text = archive_error_string(a);
    std::string out = valid_utf8(text && *text ? text : fallback);
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();  // some end in "\n"
    return out;
}

// libarchive converts entry names to the locale's character set. docpipe does not set a
// locale, so under "C" a name the ZIP flags as UTF-8 ("收据.jpg", "reçu.jpg": what macOS,
// Windows and phones write) could not be converted, and came back as no name at all. The
// reader runs in a UTF-8 locale on its own thread only (uselocale), leaving the process's alone.
class Utf8Locale {
public:
    Utf8Locale() {
        static const locale_t utf8 = [] {
            locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
            return l ? l : newlocale(LC_CTYPE_MASK, "en_US.UTF-8", static_cast<locale_t>(0));
        }();
        if (utf8) previous_ = uselocale(utf8);
    }
    ~Utf8Locale() {
        if (previous_) uselocale(previous_);
    }
    Utf8Locale(const Utf8Locale&) = delete;
    Utf8Locale& operator=(const Utf8Locale&) = delete;

private:
    locale_t previous_ = static_cast<locale_t>(0);
};

// macOS's resource-fork twins ("__MACOSX/...", "._name"), which are no files of the sender's.
bool is_macos_metadata(std::string_view path) {
    const std::size_t slash = path.find_last_of('/');
    const std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
    return path.rfind("__MACOSX/", 0) == 0 || base.rfind("._", 0) == 0;
}

// The last bytes of a stream, kept as it goes by: a tar ends with two blocks of zeros.
class Tail {
public:
    // `at`: where `data` starts in the stream (the bytes so far when omitted).
    void add(const unsigned char* data, std::size_t n, std::optional<std::size_t> at = std::nullopt) {
        const std::size_t start = at.value_or(seen_);
        for (std::size_t i = n; i > 0; --i)
            if (data[i - 1] != 0) {
                last_data_ = start + i;  // one past the last byte that is not zero
                break;
            }
        seen_ = start + n;
        bytes_.append(reinterpret_cast<const char*>(data), n);
        if (bytes_.size() > 2 * kTarEnd) bytes_.erase(0, bytes_.size() - kTarEnd);
    }
    // Where the stream's data end: past this, only zeros (a tar's end marker and padding).
    std::size_t data_end() const { return last_data_; }
    bool ends_as_a_tar_does() const {
        const std::string_view last = std::string_view(bytes_).substr(bytes_.size() > kTarEnd ? bytes_.size() - kTarEnd : 0);
        return last.size() == kTarEnd && last.find_first_not_of('\0') == std::string_view::npos;
    }
    // How many entries a ZIP's directory lists, from its end record when the stream ends with
    // one (its comment, if any, under 1 KB); none for ZIP64 or when it cannot be told.
    std::optional<std::uint64_t> zip_directory_entries() const {
        const std::string_view last(bytes_);
        for (std::size_t at = last.rfind("PK\x05\x06"); at != std::string_view::npos && at + 22 <= last.size();
             at = at == 0 ? std::string_view::npos : last.rfind("PK\x05\x06", at - 1)) {
            const auto u16 = [&](std::size_t i) {
                return static_cast<unsigned>(static_cast<unsigned char>(last[at + i]) | static_cast<unsigned char>(last[at + i + 1]) << 8);
            };
            if (at + 22 + u16(20) != last.size()) continue;  // not the record that ends the stream
            if (u16(10) == 0xFFFF) return std::nullopt;      // ZIP64: the count is elsewhere
            return u16(10);
        }
        return std::nullopt;
    }

private:
    static constexpr std::size_t kTarEnd = 1024;
    std::string bytes_;
    std::size_t seen_ = 0, last_data_ = 0;
};

// Bytes after the last gzip member or bzip2 stream that are not zeros: a member or stream
// whose header was damaged (the decoders stop at it, and a tar split across members, as
// pbzip2 writes one, loses the files in it), or something joined on.
const std::string kAfterTheEnd = "it holds data after its end (a damaged part, or something joined to it)";

bool trailing_data(const unsigned char* data, std::size_t size) {
    return std::any_of(data, data + size, [](unsigned char c) { return c != 0; });
}

// What the compression around an archive says of its own data, which libarchive does not look
// at: its gzip reader never checks a member's CRC-32 and length, and a tar is read only up to
// its end marker, before a bzip2 or xz stream's last checks. A damaged .tar.gz went on with
// changed bytes, or lost a file, without a word. Decompresses at most `budget` bytes (one
// more tells a stream over it), counted in `produced`; the stream's last bytes go to `tail`.
// Data after the last gzip member or bzip2 stream, other than zeros, are damage
// (kAfterTheEnd: what came before them checked out). Returns "" when whole.
std::string compression_damage(const Bytes& bytes, int filter, std::size_t budget, std::size_t& produced, Tail& tail) {
    unsigned char out[65536];
    produced = 0;
    if (filter == ARCHIVE_FILTER_GZIP) {
        z_stream z{};
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return {};
        z.next_in = const_cast<Bytef*>(bytes.data());
        z.avail_in = static_cast<uInt>(std::min<std::size_t>(bytes.size(), UINT32_MAX));
        std::string why;
        for (;;) {
            z.next_out = out;
            z.avail_out = sizeof out;
            const int rc = inflate(&z, Z_NO_FLUSH);
            const std::size_t n = sizeof out - z.avail_out;
            produced += n;
            tail.add(out, n);
            if (produced > budget) break;
            if (rc == Z_STREAM_END) {
                // Members may follow one another; bytes after the last member are not gzip's
                // (the tar's end marker, checked after, tells a member lost there).
                if (z.avail_in >= 2 && z.next_in[0] == 0x1F && z.next_in[1] == 0x8B && inflateReset(&z) == Z_OK) continue;
                if (trailing_data(z.next_in, z.avail_in)) why = kAfterTheEnd;
                break;
            }
            if (rc == Z_OK || (rc == Z_BUF_ERROR && z.avail_out == 0)) continue;
            why = rc == Z_BUF_ERROR ? "its gzip stream is cut short"
                                    : fmt::format("its gzip data do not check out (zlib: {})", z.msg ? z.msg : "error");
            break;
        }
        inflateEnd(&z);
        return why;
    }
    if (filter == ARCHIVE_FILTER_BZIP2) {
        // libbz2 itself: libarchive's reader ends, without a word, at a second stream whose
        // header was damaged.
        const char* in = reinterpret_cast<const char*>(bytes.data());
        std::size_t left = bytes.size();
        for (;;) {
            bz_stream b{};
            if (BZ2_bzDecompressInit(&b, 0, 0) != BZ_OK) return {};
            b.next_in = const_cast<char*>(in);
            b.avail_in = static_cast<unsigned>(std::min<std::size_t>(left, UINT32_MAX));
            int rc = BZ_OK;
            bool over = false;
            while (rc == BZ_OK) {
                b.next_out = reinterpret_cast<char*>(out);
                b.avail_out = sizeof out;
                rc = BZ2_bzDecompress(&b);
                const std::size_t n = sizeof out - b.avail_out;
                produced += n;
                tail.add(out, n);
                if (produced > budget) {
                    over = true;
                    break;
                }
                if (rc == BZ_OK && b.avail_in == 0 && n == 0) break;  // no input left before the stream's end
            }
            in = b.next_in;
            left = b.avail_in;
            BZ2_bzDecompressEnd(&b);
            if (over) return {};
            if (rc == BZ_OK) return "its bzip2 stream is cut short";
            if (rc != BZ_STREAM_END) return fmt::format("its compressed data do not check out (bzip2 error {})", rc);
            if (left >= 3 && in[0] == 'B' && in[1] == 'Z' && in[2] == 'h') continue;  // the next stream (pbzip2 writes many)
            if (trailing_data(reinterpret_cast<const unsigned char*>(in), left)) return kAfterTheEnd;
            return {};
        }
    }
    if (filter != ARCHIVE_FILTER_XZ) return {};
    // xz checks its own data, and its end, as it is decompressed.
    std::unique_ptr<struct archive, ReaderDeleter> raw(archive_read_new());
    if (!raw) return {};
    archive_read_support_filter_xz(raw.get());
    archive_read_support_format_raw(raw.get());
    struct archive_entry* entry = nullptr;
    if (archive_read_open_memory(raw.get(), bytes.data(), bytes.size()) != ARCHIVE_OK ||
        archive_read_next_header(raw.get(), &entry) != ARCHIVE_OK)
        return fmt::format("its compressed stream cannot be read ({})", reader_error(raw.get(), "unreadable"));
    for (;;) {
        const la_ssize_t n = archive_read_data(raw.get(), out, sizeof out);
        if (n == 0) return {};
        if (n < 0) return fmt::format("its compressed data do not check out ({})", reader_error(raw.get(), "damaged"));
        produced += static_cast<std::size_t>(n);
        tail.add(out, static_cast<std::size_t>(n));
        if (produced > budget) return {};
    }
}

const std::string twice_compressed =
    "compressed twice (e.g. a .gz of a .bz2): not read; ask the sender to attach the files, or one ZIP or .tar.gz";

// gzip, bzip2 and xz, built into libarchive, and no external filter programs
// (archive_read_support_filter_all would let a crafted file run lrzip or lzop; a filter
// libarchive could run only as a program answers ARCHIVE_WARN on a reader, and is not used).
void use_builtin_filters(struct archive* reader) {
    for (auto* filter : {archive_read_support_filter_gzip, archive_read_support_filter_bzip2, archive_read_support_filter_xz}) {
        std::unique_ptr<struct archive, ReaderDeleter> probe(archive_read_new());
        if (probe && filter(probe.get()) == ARCHIVE_OK) filter(reader);
    }
}

// One file compressed alone ("receipt.jpg.gz": gzip, bzip2 or xz, no tar inside): read as the
// archive's only entry, with no path (the caller names it after the archive), when its first
// 4 KB show what `read_rest` wants. Only then are its compression's own checks run, as for a
// compressed tar, and the file read: within max_attachment_bytes (one byte more tells a file
// over it) and what is left of the email's budget, which is charged what was decompressed.
// Returns false, with only `decompressed` set, when the bytes are no such file.
bool read_compressed_file(const Bytes& bytes, const ArchiveLimits& limits, const std::function<bool(const Bytes& head)>& read_rest,
                          ArchiveListing& listing) {
    if (!compressed_stream(bytes.data(), bytes.size()) || !read_rest) return false;
    std::unique_ptr<struct archive, ReaderDeleter> reader(archive_read_new());
    if (!reader) return false;
    use_builtin_filters(reader.get());
    archive_read_support_format_raw(reader.get());
    struct archive_entry* entry = nullptr;
    if (archive_read_open_memory(reader.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
        // The compression was recognised and its data fail where they start (a bzip2 block's
        // CRC), or it holds nothing at all (an empty .gz): the check tells which.
        const int by_magic = bytes[0] == 0x1F ? ARCHIVE_FILTER_GZIP : bytes[0] == 'B' ? ARCHIVE_FILTER_BZIP2 : ARCHIVE_FILTER_XZ;
        Tail unused;
        std::size_t checked = 0;
        const std::string why = compression_damage(bytes, by_magic, 1u << 20, checked, unused);
        listing.decompressed = std::min(checked, limits.max_total_bytes + 1);
        if (why.empty()) return false;
        listing.error = "the archive is damaged: " + why + "; ask the sender for it again";
        return true;
    }
    const int filter = archive_filter_code(reader.get(), 0);
    if (filter == ARCHIVE_FILTER_NONE || archive_read_next_header(reader.get(), &entry) != ARCHIVE_OK) return false;
    if (archive_filter_count(reader.get()) > 2) {
        listing.error = twice_compressed;
        return true;
    }
    const std::size_t room = std::min(limits.max_entry_bytes, limits.max_total_bytes);
    Bytes head(std::min<std::size_t>(4096, room + 1));
    const la_ssize_t n = archive_read_data(reader.get(), head.data(), head.size());
    if (n < 0) {
        // Damaged where it starts: what it holds cannot be told, so it is named as damaged.
        listing.error = fmt::format("the archive is damaged: its compressed data do not check out ({}); ask the sender for it again",
                                    reader_error(reader.get(), "damaged"));
        listing.decompressed = head.size();
        return true;
    }
    head.resize(static_cast<std::size_t>(n));
    // A bzip2 block is decompressed whole to give its first bytes: the stream's position is charged.
    listing.decompressed = std::max<std::size_t>(head.size(), static_cast<std::size_t>(std::max<la_int64_t>(0, archive_filter_bytes(reader.get(), 0))));
    if (head.empty()) return false;
    if (!read_rest(head)) {
        // No image or PDF, or one whose data were changed where they start (bzip2 gives a
        // block's bytes before its CRC is checked). The first MB is checked, not the whole
        // stream: a text file of gigabytes would cost that much CPU for nothing.
        Tail unused;
        std::size_t checked = 0;
        const std::string why = compression_damage(bytes, filter, std::min<std::size_t>(1u << 20, room), checked, unused);
        listing.decompressed = std::max(listing.decompressed, std::min(checked, room + 1));
        if (why.empty()) return false;
        listing.error = "the archive is damaged: " + why + "; ask the sender for it again";
        return true;
    }
    listing.format = "file";
    ArchiveEntry file;
    file.wanted = true;
    const std::string over_budget =
        fmt::format("the email's archives came to more than {} bytes when decompressed (max_archive_bytes)",
                    limits.budget_named ? limits.budget_named : limits.max_total_bytes);
    const auto over = [&] {
        return room == limits.max_entry_bytes ? fmt::format("over {} bytes when decompressed (max_attachment_bytes)", limits.max_entry_bytes)
                                              : over_budget;
    };
    // The checks decompress at most what the file may take, and one byte more.
    Tail unused;
    std::size_t checked = 0;
    const std::string why = compression_damage(bytes, filter, room, checked, unused);
    checked = std::min(checked, room + 1);
    if (!why.empty()) {
        file.problem = "damaged: " + why + "; ask the sender for it again";
    } else if (checked > room) {
        file.problem = over();
    } else {
        file.bytes = std::move(head);
        unsigned char buf[65536];
        while (file.bytes.size() <= room) {
            const la_ssize_t got = archive_read_data(reader.get(), buf, std::min(sizeof buf, room + 1 - file.bytes.size()));
            if (got == 0) break;
            if (got < 0) {
                file.problem = fmt::format("cannot be decompressed: {}", reader_error(reader.get(), "read error"));
                break;
            }
            file.bytes.insert(file.bytes.end(), buf, buf + got);
        }
        if (file.problem.empty() && file.bytes.size() > room) file.problem = over();
        // Two readings of one stream must agree (a cheap guard on libarchive's reading).
        if (file.problem.empty() && file.bytes.size() != checked)
            file.problem = fmt::format("damaged: decompressed twice, it came to {} and {} bytes", checked, file.bytes.size());
        if (!file.problem.empty()) file.bytes.clear();
    }
    listing.decompressed = std::max({listing.decompressed, checked, file.bytes.size()});
    listing.entries.push_back(std::move(file));
    return true;
}

}  // namespace

// libarchive parses the whole central directory before the first header is returned (a 87 MB
// ZIP of 1.2 million entries held 630 MB), so a ZIP with more records than could be read is
// refused before that. Which end record libarchive takes, where it looks for the ZIP64 one
// and where it starts reading records are its own rules, and a crafted file can play on each;
// every directory record starts with the same 4-byte signature, so counting those in the
// whole file is an upper bound that no layout escapes (a stored file may add a few more).
std::uint64_t central_directory_records(const Bytes& zip, std::uint64_t most) {
    static constexpr std::uint8_t kSignature[] = {'P', 'K', 1, 2};
    std::uint64_t records = 0;
    for (auto at = zip.begin(); records <= most;) {
        at = std::search(at, zip.end(), std::begin(kSignature), std::end(kSignature));
        if (at == zip.end()) break;
        ++records;
        at += 4;
    }
    return records;
}

ArchiveListing read_archive(const Bytes& bytes, const ArchiveLimits& limits, const std::function<ArchiveWant(std::string_view path)>& want,
                    const std::function<bool(const Bytes& head)>& read_rest) {
    ArchiveListing listing;
    std::unique_ptr<struct archive, ReaderDeleter> reader(archive_read_new());
    if (!reader) {
        listing.error = "libarchive could not make a reader (out of memory)";
        return listing;
    }
    // ZIP and tar only, compressed by the built-in filters only. libarchive reads a ZIP's
    // central directory when there is one, and the local headers one after another when it
    // is missing (a cut file).
    const std::uint64_t most_headers = 4 * static_cast<std::uint64_t>(limits.max_entries) + 100;
    const Utf8Locale utf8_names;
    archive_read_support_format_zip(reader.get());
    archive_read_support_format_tar(reader.get());
    use_builtin_filters(reader.get());
    if (archive_read_open_memory(reader.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
        if (read_compressed_file(bytes, limits, read_rest, listing)) return listing;
        listing.error = fmt::format("not a readable archive (ZIP or tar): {}; ask the sender to attach the files or a ZIP",
                                    reader_error(reader.get(), "unknown format"));
        return listing;
    }
    // Compressed (a .tar.gz, or a .zip.bz2), the archive is one stream: stepping over a file
    // means decompressing it, and libarchive reads a ZIP in it as a stream, without its
    // directory. Not compressed, a ZIP's directory may be parsed whole before the first
    // header, so it is counted first (whatever the first bytes claim to be: a crafted prefix
    // does not stop libarchive's ZIP reader). A plain tar that stores ZIPs holds their
    // directory records too, and is refused the same way past the limit.
    const bool skips_decompress = archive_filter_code(reader.get(), 0) != ARCHIVE_FILTER_NONE;
    if (archive_filter_count(reader.get()) > 2) {
        // Only the outer compression's checks could be run (and on the wrong data), and a
        // few bytes of nested compression are a bomb the budget would not see coming.
        listing.error = twice_compressed;
        return listing;
    }
    if (!skips_decompress && central_directory_records(bytes, most_headers) > most_headers) {
        listing.too_many_entries = true;
        return listing;
    }
    const std::string over_budget =
        fmt::format("the email's archives came to more than {} bytes when decompressed (max_archive_bytes); the rest is not read",
                    limits.budget_named ? limits.budget_named : limits.max_total_bytes);
    // The checks decompress the stream once more: charged like the reading is (a hundred tiny
    // archives of zeros in one email spent minutes before).
    Tail tail;
    bool checks_complete = true;
    std::string trailing_damage;  // said once the files before it are read
    std::size_t checked = 0;  // decompressed by the checks: at the end, the email is charged at least this
    if (skips_decompress) {
        std::string why = compression_damage(bytes, archive_filter_code(reader.get(), 0), limits.max_total_bytes, checked, tail);
        listing.decompressed = checked = std::min(checked, limits.max_total_bytes + 1);
        if (why == kAfterTheEnd) {
            // What came before checked out: its files are read, and the archive named after.
            trailing_damage = "the archive is damaged: " + why + "; files after the last one listed may be missing";
        } else if (!why.empty()) {
            listing.error = "the archive is damaged: " + why + "; ask the sender for it again";
            return listing;
        }
        // Over the budget: the files that fit before it are still read, and the reading stops
        // at the budget and says so (the checks past it were not made).
        checks_complete = checked <= limits.max_total_bytes;
        listing.decompressed = 0;  // the reading below counts its own, within the same budget
    } else {
        // Where the data end, then the last 1 KB.
        std::size_t end = bytes.size();
        while (end > 0 && bytes[end - 1] == 0) --end;
        if (end > 0) tail.add(bytes.data() + end - 1, 1, end - 1);
        const std::size_t last = std::min<std::size_t>(bytes.size(), 1024);
        tail.add(bytes.data() + bytes.size() - last, last, bytes.size() - last);
    }
    // In a compressed archive, libarchive decompresses the headers too, inside
    // archive_read_next_header (a GNU long name can be megabytes, and a few kilobytes of bzip2
    // make gigabytes of them): the position in the decompressed stream is charged, not only
    // the files' bytes.
    const auto charge_stream = [&] {
        if (!skips_decompress) return true;
        const la_int64_t position = archive_filter_bytes(reader.get(), 0);
        if (position > 0) listing.decompressed = std::max(listing.decompressed, static_cast<std::size_t>(position));
        if (listing.decompressed <= limits.max_total_bytes) return true;
        listing.error = over_budget;
        return false;
    };
    std::size_t headers = 0;
    unsigned char buf[65536];
    constexpr std::size_t kSniffBytes = 4096;
    // Reads what is left of the current entry into nothing, charging the budget. Needed only
    // for an entry whose size is not in its header (written with a data descriptor, read
    // without the central directory): libarchive finds the end of such an entry only by
    // decompressing it, so a skip is as costly as a read and must be bounded like one.
    // False when the budget ran out or the data is damaged.
    auto drain = [&]() {
        for (;;) {
            const la_ssize_t n = archive_read_data(reader.get(), buf, sizeof buf);
            if (n == 0) return true;
            if (n < 0) {
                // The files after this one cannot be reached: said, not dropped.
                listing.error = fmt::format("the archive is damaged after its first {} files: {}", listing.entries.size(),
                                            reader_error(reader.get(), "a file that cannot be decompressed"));
                return false;
            }
            listing.decompressed += static_cast<std::size_t>(n);
            if (listing.decompressed > limits.max_total_bytes) {
                listing.error = over_budget;
                return false;
            }
        }
    };
    for (int retries = 0;;) {
        struct archive_entry* entry = nullptr;
        const int status = archive_read_next_header(reader.get(), &entry);
        if (status == ARCHIVE_EOF) break;
        if (status == ARCHIVE_RETRY && ++retries <= 3) continue;
        if (status == ARCHIVE_FATAL || status == ARCHIVE_RETRY || !entry) {
            // A cut or damaged archive: the entries read so far stand, the rest is unknown.
            const std::string why = reader_error(reader.get(), "a header that cannot be read");
            listing.error = listing.entries.empty() ? fmt::format("the archive is damaged: {}", why)
                                                    : fmt::format("the archive is damaged after its first {} files: {}", listing.entries.size(), why);
            break;
        }
        retries = 0;
        if (!charge_stream()) break;
        if (const int format = archive_format(reader.get()) & ARCHIVE_FORMAT_BASE_MASK; listing.format.empty() && format != 0)
            listing.format = format == ARCHIVE_FORMAT_ZIP ? "zip" : "tar";
        if (status == ARCHIVE_WARN && archive_entry_filetype(entry) == 0) {
            // libarchive warns and hands back a header of no type when a tar's special headers
            // (long names, pax records) are damaged or too many: no file of the sender's.
            const std::string why = reader_error(reader.get(), "a header that cannot be read");
            listing.error = listing.entries.empty() ? fmt::format("the archive is damaged: {}", why)
                                                    : fmt::format("the archive is damaged after its first {} files: {}", listing.entries.size(), why);
            break;
        }
        // Folders and macOS metadata do not count as files, but reading their headers is work
        // too: a ZIP of a million empty folders stops here.
        if (++headers > most_headers) {
            listing.too_many_entries = true;
            break;
        }
        const char* name = archive_entry_pathname_utf8(entry);
        if (!name) name = archive_entry_pathname(entry);
        const std::string path = valid_utf8(name ? name : "");
        const bool size_known = archive_entry_size_is_set(entry) != 0 && !skips_decompress;
        // Directories, links (a tar's hard link is a second name of a file already read), and
        // the resource-fork twin macOS adds for every file ("__MACOSX/._IMG_1.jpg") are no
        // files of the sender's.
        const auto type = archive_entry_filetype(entry);
        if (type != AE_IFREG && type != AE_IFLNK && archive_entry_size(entry) > 0 && !is_macos_metadata(path)) {
            // A folder, device, socket or unknown type that carries data: one changed byte of a
            // ZIP's mode field makes a receipt this. Said, not dropped.
            if (listing.entries.size() >= limits.max_entries) {
                listing.too_many_entries = true;
                break;
            }
            ArchiveEntry odd;
            odd.path = path;
            odd.wanted = true;
            odd.problem = "stored as a folder or special file that carries data, not read: the archive may be damaged";
            listing.entries.push_back(std::move(odd));
            if (!size_known && !drain()) break;
            continue;
        }
        if (type != AE_IFREG || archive_entry_hardlink(entry) != nullptr || is_macos_metadata(path)) {
            if (!size_known && !drain()) break;
            continue;
        }
        if (listing.entries.size() >= limits.max_entries) {
            listing.too_many_entries = true;
            break;
        }
        ArchiveEntry file;
        file.path = path;
        const ArchiveWant wish = want(file.path);
        file.wanted = wish != ArchiveWant::Skip;
        file.encrypted = archive_entry_is_data_encrypted(entry) != 0 || archive_entry_is_encrypted(entry) != 0;
        // libarchive steps over what it cannot decrypt by its stored size.
        bool rest_unread = !size_known && !file.encrypted;
        if (status == ARCHIVE_FAILED) {
            // This entry's header says something libarchive cannot follow; the next may be fine.
            file.problem = fmt::format("cannot be read: {}", reader_error(reader.get(), "unreadable entry"));
            rest_unread = false;
        } else if (file.wanted && file.encrypted) {
            file.problem = "password-protected: it cannot be read without the password";
        } else if (file.wanted && listing.decompressed >= limits.max_total_bytes) {
            file.problem = over_budget;
        } else if (file.wanted) {
            // Read at most one byte past what this entry may take, to tell a file over it.
            const std::size_t room = std::min(limits.max_entry_bytes, limits.max_total_bytes - listing.decompressed);
            bool ended = false;
            auto read_up_to = [&](std::size_t until) {
                while (file.bytes.size() < until) {
                    const la_ssize_t n = archive_read_data(reader.get(), buf, std::min(sizeof buf, until - file.bytes.size()));
                    if (n == 0) {
                        ended = true;
                        return;
                    }
                    if (n < 0) {
                        file.problem = fmt::format("cannot be decompressed: {}", reader_error(reader.get(), "read error"));
                        return;
                    }
                    file.bytes.insert(file.bytes.end(), buf, buf + n);
                }
            };
            // A file whose name says nothing: its first bytes decide whether the rest is read.
            if (wish == ArchiveWant::Sniff) {
                read_up_to(std::min(kSniffBytes, room + 1));
                if (file.problem.empty() && read_rest && !read_rest(file.bytes)) {
                    listing.decompressed += std::min(file.bytes.size(), room);
                    file.head = std::move(file.bytes);
                    file.bytes.clear();
                    file.wanted = false;
                    listing.entries.push_back(std::move(file));
                    if (!ended && rest_unread && !drain()) break;
                    continue;
                }
            }
            if (file.problem.empty() && !ended) read_up_to(room + 1);
            listing.decompressed += std::min(file.bytes.size(), room);
            if (file.problem.empty() && file.bytes.size() > room)
                file.problem = room == limits.max_entry_bytes
                                   ? fmt::format("over {} bytes when decompressed (max_attachment_bytes)", limits.max_entry_bytes)
                                   : over_budget;
            else rest_unread = false;  // read to its end, or its data is damaged
            if (!file.problem.empty()) file.bytes.clear();
        }
        listing.entries.push_back(std::move(file));
        // What is left of an entry with its size in its header is stepped over by the next
        // header call without being decompressed.
        if (rest_unread && !drain()) break;
    }
    // A tar whose first header was zeroed ends at once, before any header told its format.
    if (listing.format.empty() && (archive_format(reader.get()) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_TAR) listing.format = "tar";
    // libarchive takes a tar that stops after any whole file as ended: one cut there, or whose
    // second gzip member or bzip2 stream was lost, lost its last files unsaid.
    if (listing.format == "tar" && listing.error.empty() && !listing.too_many_entries && !checks_complete) {
        // The reading stopped before the budget (at a zeroed header), but the stream goes on
        // past it: its end could not be checked.
        listing.error = fmt::format("the archive decompresses to more than {} bytes (max_archive_bytes) and its reading stopped early: "
                                    "files after the last one listed may be missing",
                                    limits.budget_named ? limits.budget_named : limits.max_total_bytes);
    }
    if (listing.format == "tar" && listing.error.empty() && !listing.too_many_entries && checks_complete) {
        // libarchive stops at the first block of zeros: data after it (a second tar joined
        // with cat, or a header zeroed in transit) were not read.
        const la_int64_t stopped_at = archive_filter_bytes(reader.get(), 0);
        if (!tail.ends_as_a_tar_does())
            listing.error = "the archive ends without a tar's end marker (two blocks of zeros): cut short, or a part of it lost; files "
                            "after the last one listed may be missing";
        else if (stopped_at >= 0 && tail.data_end() > static_cast<std::size_t>(stopped_at))
            listing.error = fmt::format("the archive holds data after its end marker at byte {} (a second archive joined to it, or a "
                                        "damaged header): the files there are not read",
                                        stopped_at);
    }
    // A ZIP read as a stream (inside a compression) is read header after header: one whose
    // signature was damaged is stepped over to the next, without a word. The directory at its
    // end says how many there were.
    if (listing.format == "zip" && skips_decompress && listing.error.empty() && !listing.too_many_entries && checks_complete)
        if (const auto listed = tail.zip_directory_entries(); listed && *listed > headers)
            listing.error = fmt::format("the archive is damaged: its directory lists {} entries, and {} were found; files may be missing",
                                        *listed, headers);
    if (listing.error.empty() && !trailing_damage.empty()) listing.error = trailing_damage;
    listing.decompressed = std::max(listing.decompressed, checked);
    return listing;
}

}  // namespace docpipe::mail
