#include "archive.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/core.h>

namespace docpipe::mail {

namespace {

struct ReaderDeleter {
    void operator()(struct archive* a) const { archive_read_free(a); }
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

// A ZIP stores names in UTF-8 only when a flag says so; older tools wrote CP437 or the
// sender's code page, which libarchive cannot always convert. Such a name goes into a
// document's attributes (JSON), so every byte that is not part of valid UTF-8 becomes '_'.
std::string valid_utf8(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size();) {
        const auto c = static_cast<unsigned char>(in[i]);
        std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = len > 0 && i + len <= in.size();
        for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
        // Overlong forms and surrogates are not valid either.
        if (ok && len == 2) ok = c >= 0xC2;
        if (ok && len == 3) {
            const auto c1 = static_cast<unsigned char>(in[i + 1]);
            ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
        }
        if (ok && len == 4) {
            const auto c1 = static_cast<unsigned char>(in[i + 1]);
            ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
        }
        if (ok) {
            out.append(in.substr(i, len));
            i += len;
        } else {
            out += '_';
            ++i;
        }
    }
    return out;
}

std::string reader_error(struct archive* a, const char* fallback) {
    const char* text = archive_error_string(a);
    return valid_utf8(text && *text ? text : fallback);
}

}  // namespace

bool is_zip(std::string_view media_type, std::string_view filename) {
    const std::string type = lower(media_type);
    if (type == "application/zip" || type == "application/x-zip" || type == "application/x-zip-compressed" ||
        type == "multipart/x-zip")
        return true;
    return (type == "application/octet-stream" || type.empty()) && ends_with(filename, ".zip");
}

bool is_unopened_archive(std::string_view media_type, std::string_view filename) {
    const std::string type = lower(media_type);
    if (type == "application/x-7z-compressed" || type == "application/vnd.rar" || type == "application/x-rar-compressed" ||
        type == "application/x-rar")
        return true;
    return (type == "application/octet-stream" || type.empty()) && (ends_with(filename, ".7z") || ends_with(filename, ".rar"));
}

ZipListing read_zip(const Bytes& bytes, const ZipLimits& limits, const std::function<bool(std::string_view path)>& wanted) {
    ZipListing listing;
    std::unique_ptr<struct archive, ReaderDeleter> reader(archive_read_new());
    if (!reader) {
        listing.error = "libarchive could not make a reader (out of memory)";
        return listing;
    }
    // ZIP only, and no external filter programs (archive_read_support_filter_all would let a
    // crafted file run lrzip or lzop).
    archive_read_support_format_zip(reader.get());
    if (archive_read_open_memory(reader.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
        listing.error = fmt::format("not a readable ZIP archive: {}", reader_error(reader.get(), "unknown format"));
        return listing;
    }
    std::size_t seen = 0, total = 0;
    for (;;) {
        struct archive_entry* entry = nullptr;
        const int status = archive_read_next_header(reader.get(), &entry);
        if (status == ARCHIVE_EOF) break;
        if (status < ARCHIVE_WARN) {
            // A cut or damaged archive: the entries read so far stand, the rest is unknown.
            listing.error = fmt::format("the archive is damaged after {} entries: {}", seen, reader_error(reader.get(), "unreadable header"));
            break;
        }
        if (archive_entry_filetype(entry) != AE_IFREG) continue;  // directories, links
        if (++seen > limits.max_entries) {
            ++listing.not_listed;
            continue;
        }
        ZipEntry file;
        const char* name = archive_entry_pathname_utf8(entry);
        if (!name) name = archive_entry_pathname(entry);
        file.path = valid_utf8(name ? name : "");
        file.wanted = wanted(file.path);
        file.encrypted = archive_entry_is_data_encrypted(entry) != 0 || archive_entry_is_encrypted(entry) != 0;
        if (file.wanted && file.encrypted) {
            file.problem = "password-protected: it cannot be read without the password";
        } else if (file.wanted && total >= limits.max_total_bytes) {
            file.problem = fmt::format("not read: the archive's files already came to {} bytes (the limit for one archive)", limits.max_total_bytes);
        } else if (file.wanted) {
            // Read at most one byte past what this entry may take, to tell a file over it.
            const std::size_t room = std::min(limits.max_entry_bytes, limits.max_total_bytes - total);
            unsigned char buf[65536];
            bool failed = false;
            while (file.bytes.size() <= room) {
                const la_ssize_t n = archive_read_data(reader.get(), buf, std::min(sizeof buf, room + 1 - file.bytes.size()));
                if (n == 0) break;
                if (n < 0) {
                    file.problem = fmt::format("cannot be decompressed: {}", reader_error(reader.get(), "read error"));
                    failed = true;
                    break;
                }
                file.bytes.insert(file.bytes.end(), buf, buf + n);
            }
            total += std::min(file.bytes.size(), room);
            if (!failed && file.bytes.size() > room) {
                file.problem = room == limits.max_entry_bytes
                                   ? fmt::format("over {} bytes when decompressed (the limit for one file)", limits.max_entry_bytes)
                                   : fmt::format("not read whole: the archive's files came to more than {} bytes (the limit for one archive)",
                                                 limits.max_total_bytes);
            }
            if (!file.problem.empty()) file.bytes.clear();
        }
        listing.entries.push_back(std::move(file));
        // What is left of an entry is skipped by the next header call; for a ZIP that steps
        // over the compressed bytes without decompressing them.
    }
    return listing;
}

}  // namespace docpipe::mail
