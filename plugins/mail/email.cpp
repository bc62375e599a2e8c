#include "email.hpp"

#include <gmime/gmime.h>

#include "archive.hpp"
#include "attachment_kind.hpp"
#include "smime.hpp"
#include "rtf.hpp"
#include "tnef.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>

#include <fmt/core.h>

namespace docpipe::mail {

namespace {

std::atomic<Logger*> library_logger{nullptr};

void on_glib_message(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer) {
    const std::string text = fmt::format("{}: {}", domain ? domain : "glib", message ? message : "");
    Logger* logger = library_logger.load();
    const bool serious = (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) != 0;
    if (logger) logger->log(serious ? LogLevel::Warn : LogLevel::Debug, text);
    // With no node to tell (a tool parsing mail outside a pipeline), stay silent: the parse
    // result's `problems` say what could not be read.
}

void init_gmime() {
    static std::once_flag once;
    std::call_once(once, [] {
        g_mime_init();
        const auto levels = static_cast<GLogLevelFlags>(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION);
        for (const char* domain : {"gmime", "GLib", "GLib-GObject", "GLib-GIO"}) g_log_set_handler(domain, levels, on_glib_message, nullptr);
    });
}

// GLib/GMime objects are reference counted; this releases one reference at scope exit.
template <typename T>
struct GRef {
    T* p = nullptr;
    explicit GRef(T* ptr) : p(ptr) {}
    ~GRef() {
        if (p) g_object_unref(p);
    }
    GRef(const GRef&) = delete;
    GRef& operator=(const GRef&) = delete;
};

struct GString_ {
    char* p = nullptr;
    explicit GString_(char* ptr) : p(ptr) {}
    ~GString_() { g_free(p); }
    std::string str() const { return p ? std::string(p) : std::string(); }
};

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Bytes decoded_content(GMimePart* part) {
    Bytes out;
    GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
    if (!wrapper) return out;
    GRef<GMimeStream> stream(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(wrapper, stream.p);  // undoes base64 / quoted-printable
    GByteArray* array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream.p));
    if (array && array->len) out.assign(array->data, array->data + array->len);
    return out;
}

// The first `max` decoded bytes of a part, without decoding the rest (a 60 MB part of unknown
// type is looked at, not decoded whole, before it is judged).
Bytes decoded_head(GMimePart* part, std::size_t max) {
    Bytes out;
    GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
    GMimeStream* raw = wrapper ? g_mime_data_wrapper_get_stream(wrapper) : nullptr;
    if (!raw) return out;
    g_mime_stream_reset(raw);
    GRef<GMimeStream> filtered(g_mime_stream_filter_new(raw));
    if (const GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(wrapper);
        encoding == GMIME_CONTENT_ENCODING_BASE64 || encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
        GRef<GMimeFilter> decoder(g_mime_filter_basic_new(encoding, FALSE));
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.p), decoder.p);
    }
    out.resize(max);
    std::size_t got = 0;
    while (got < max) {
        const gssize n = g_mime_stream_read(filtered.p, reinterpret_cast<char*>(out.data() + got), max - got);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    g_mime_stream_reset(raw);
    return out;
}

// A sender's text (a boundary, an encoding name) fit for a reason line: printable ASCII only,
// at most `max` bytes.
std::string printable(const char* text, std::size_t max) {
    std::string out;
    for (const char* c = text ? text : ""; *c && out.size() < max; ++c)
        if (*c >= 0x20 && *c < 0x7f) out += *c;
    while (!out.empty() && out.back() == ' ') out.pop_back();
    while (!out.empty() && out.front() == ' ') out.erase(out.begin());
    return out;
}

bool blank(const char* text) {
    for (const char* c = text ? text : ""; *c; ++c)
        if (!std::isspace(static_cast<unsigned char>(*c))) return false;
    return true;
}

// Characters in a base64 part's encoded text that are neither base64 nor white space. GMime's
// decoder drops them without a word: a body of "!!!!@@@@" decoded to nothing and a body
// with a few stray characters to shifted, meaningless bytes, and the email was then
// "skipped: no claim attachment" when its attachment had only been damaged in transit.
std::size_t base64_junk(GMimePart* part) {
    GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
    GMimeStream* raw = wrapper ? g_mime_data_wrapper_get_stream(wrapper) : nullptr;
    if (!raw) return 0;
    std::size_t junk = 0;
    char buf[16384];
    g_mime_stream_reset(raw);
    for (gssize n; (n = g_mime_stream_read(raw, buf, sizeof buf)) > 0;)
        for (gssize i = 0; i < n; ++i) {
            const auto c = static_cast<unsigned char>(buf[i]);
            if (!std::isalnum(c) && c != '+' && c != '/' && c != '=' && !std::isspace(c)) ++junk;
        }
    g_mime_stream_reset(raw);
    return junk;
}

struct Walker {
    const EmailLimits& limits;
    ParsedEmail& email;
    std::size_t parts_seen = 0;
    std::string plain, html;
    int smime_nesting = 0;
    std::size_t archive_bytes_used = 0;  // decompressed from this email's archives so far
    std::string tnef_body;               // the body a winmail.dat carried, for an email with no text part
    std::string tnef_body_problem;       // why that body could not be read whole
    std::string tnef_name;               // the winmail.dat it came from, as shown
    std::string rtf;                     // a text/rtf body (Outlook's rich text sent as MIME)
    // The text of the first forwarded email (message/rfc822) that has one: a claim forwarded
    // as an attachment carries the member's own words, with the member id, in there.
    std::string forwarded_plain, forwarded_html;

    void walk(GMimeObject* object, int depth) {
        if (!object || email.too_many_parts) return;
        if (++parts_seen > limits.max_parts) {
            email.too_many_parts = true;
            return;
        }
        if (GMIME_IS_MESSAGE_PART(object)) {
            // A forwarded email: its attachments count; its text follows ours, not replacing it.
            GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
            if (inner) walk(g_mime_message_get_mime_part(inner), depth + 1);
            return;
        }
        if (GMIME_IS_MULTIPART_ENCRYPTED(object)) {
            // PGP/MIME: every part, attachments included, is inside the encrypted one.
            report_container(depth, "a PGP-encrypted email (multipart/encrypted): its attachments cannot be read without the recipient's key; "
                                    "ask the sender to send it unencrypted");
            return;
        }
        if (GMIME_IS_MULTIPART_SIGNED(object)) {
            // The signature part is no attachment; the signed content is the email (and a
            // part a sender added after the signature is walked too).
            GMimeMultipart* mp = GMIME_MULTIPART(object);
            const int n = g_mime_multipart_get_count(mp);
            for (int i = 0; i < n && !email.too_many_parts; ++i)
                if (i != GMIME_MULTIPART_SIGNED_SIGNATURE) walk(g_mime_multipart_get_part(mp, i), depth);
            return;
        }
        if (GMIME_IS_MULTIPART(object)) {
            GMimeMultipart* mp = GMIME_MULTIPART(object);
            const int n = g_mime_multipart_get_count(mp);
            if (n == 0) check_partless(object, mp, depth);
            for (int i = 0; i < n && !email.too_many_parts; ++i) walk(g_mime_multipart_get_part(mp, i), depth);
            return;
        }
        if (!GMIME_IS_PART(object)) return;
        GMimePart* part = GMIME_PART(object);
        GMimeContentType* ct = g_mime_object_get_content_type(object);
        const std::string media_type = ct ? lower(GString_(g_mime_content_type_get_mime_type(ct)).str()) : "text/plain";
        const char* disposition = g_mime_object_get_disposition(object);
        const bool attachment = disposition && lower(disposition) == "attachment";
        const char* raw_name = g_mime_part_get_filename(part);

        if (GMIME_IS_TEXT_PART(object) && !attachment && !raw_name) {
            if (depth > 0) {
                if (forwarded_plain.empty() && forwarded_html.empty() && (media_type == "text/plain" || media_type == "text/html")) {
                    GString_ text(g_mime_text_part_get_text(GMIME_TEXT_PART(object)));
                    (media_type == "text/plain" ? forwarded_plain : forwarded_html) = text.str();
                }
                return;
            }
            if (media_type == "text/rtf") {
                // RTF names its own code pages; its bytes are read as they are, not through the
                // MIME charset (and a NUL in \bin data does not end them).
                if (rtf.empty()) {
                    const Bytes raw = decoded_content(part);
                    rtf.assign(raw.begin(), raw.end());
                }
                return;
            }
            GString_ text(g_mime_text_part_get_text(GMIME_TEXT_PART(object)));  // converted to UTF-8 from its charset
            if (media_type == "text/plain" && plain.empty()) plain = text.str();
            else if (media_type == "text/html" && html.empty()) html = text.str();
            return;
        }
        Attachment a;
        a.media_type = media_type;
        a.depth = depth;
        a.inline_part = !attachment;
        // The extension comes from the sender's Content-Type, so it is used only when it looks
        // like one: a sender's "image/<25 KB of anything>" made a 25 KB file name that skipped
        // sanitize_filename (found by tests/fuzz/mime_fuzz.cpp).
        const std::string subtype = media_type.rfind("image/", 0) == 0 ? media_type.substr(6) : "";
        const bool plain_subtype = !subtype.empty() && subtype.size() <= 10 && std::all_of(subtype.begin(), subtype.end(), [](unsigned char c) {
            return std::isalnum(c) || c == '-' || c == '+' || c == '.';
        });
        const std::string fallback = fmt::format("attachment-{}{}", email.attachments.size() + 1,
                                                 media_type == "application/pdf" ? ".pdf"
                                                 : plain_subtype                 ? "." + subtype
                                                 : subtype.empty()               ? ".bin"
                                                                                 : ".img");
        a.filename = sanitize_filename(raw_name ? raw_name : "", fallback);
        Classified kind = classify_declared(a.media_type, a.filename);
        if (kind.kind == AttachmentKind::Claim) a.media_type = kind.media_type;  // "application/octet-stream" named r.jpg
        if (const std::string why_not = not_read_reason(kind.kind); !why_not.empty()) {
            // A 7-Zip or RAR archive, a PGP-encrypted file: the sender's files are inside, in a
            // form docpipe does not read. Failing the email (when nothing else is
            // claimable) puts it before a person; skipping it lost the claim.
            a.skipped = why_not;
            report_unreadable(a);
        } else if (kind.kind == AttachmentKind::Other && !GMIME_IS_APPLICATION_PKCS7_MIME(object)) {
            a.skipped = fmt::format("not an image or PDF ({})", a.media_type);
        } else if (const char* cte = g_mime_object_get_header(object, "Content-Transfer-Encoding");
                   !blank(cte) && g_mime_part_get_content_encoding(part) == GMIME_CONTENT_ENCODING_DEFAULT) {
            // GMime reads an encoding it does not know as 7bit: the encoded text itself went on as
            // the image and failed later as "r.jpg: not a readable image", the encoding unsaid.
            a.skipped = fmt::format("unknown Content-Transfer-Encoding \"{}\": its content cannot be decoded", printable(cte, 60));
            report_unreadable(a);
        } else if (const std::size_t junk = g_mime_part_get_content_encoding(part) == GMIME_CONTENT_ENCODING_BASE64 ? base64_junk(part) : 0;
                   junk > 0) {
            a.skipped = fmt::format("its base64 cannot be decoded ({} characters outside the base64 alphabet)", junk);
            report_unreadable(a);
        } else {
            if (GMIME_IS_APPLICATION_PKCS7_MIME(object)) kind = {AttachmentKind::Pkcs7, {}};
            if (kind.kind == AttachmentKind::Unknown) {
                // "application/octet-stream" named "receipt" or "scan.dat": its first bytes say
                // what it is, and only then is the whole part decoded.
                const Bytes head = decoded_head(part, 4096);
                kind = classify_bytes(head.data(), head.size());
                if (kind.kind == AttachmentKind::Claim) a.media_type = kind.media_type;
            }
            const bool worth_decoding = kind.kind == AttachmentKind::Claim || kind.kind == AttachmentKind::Archive ||
                                        kind.kind == AttachmentKind::Pkcs7 || kind.kind == AttachmentKind::Tnef;
            Bytes bytes = worth_decoding ? decoded_content(part) : Bytes{};
            if (kind.kind == AttachmentKind::Pkcs7) {
                open_smime(a, std::move(bytes));
                return;
            }
            if (kind.kind == AttachmentKind::Archive) {
                open_archive(a, std::move(bytes));
                return;
            }
            if (kind.kind == AttachmentKind::Tnef) {
                open_tnef(a, std::move(bytes));
                return;
            }
            if (const std::string why_not = not_read_reason(kind.kind); !why_not.empty()) {
                a.skipped = why_not;
                report_unreadable(a);
            } else if (kind.kind != AttachmentKind::Claim) {
                a.skipped = fmt::format("not an image or PDF ({}, and its content is neither)", a.media_type);
            } else if (a.skipped = size_problem(a.media_type, bytes.size(), "part"); a.skipped.empty()) {
                a.bytes = std::move(bytes);
            } else if (could_be_the_claim(bytes.size())) {
                report_unreadable(a);
            }
        }
        email.attachments.push_back(std::move(a));
    }

    // Why a claim file of `size` bytes is not read ("" = it is): empty, over
    // max_attachment_bytes, or an image too small to be more than a logo. `what` names it
    // ("part", "file").
    std::string size_problem(const std::string& media_type, std::size_t size, const char* what) const {
        if (size == 0) return fmt::format("empty: the {} has no content", what);
        if (size > limits.max_attachment_bytes)
            return fmt::format("{} bytes is over the {}-byte limit (max_attachment_bytes)", size, limits.max_attachment_bytes);
        if (media_type.rfind("image/", 0) == 0 && size < limits.min_image_bytes)
            return fmt::format("image of {} bytes is under min_image_bytes ({}): a logo or signature", size, limits.min_image_bytes);
        return {};
    }

    // A claim file skipped for its size may still be the claim: one over max_attachment_bytes
    // (a long scanned PDF) or empty (an upload that broke). Alone in its email, it was skipped
    // and the email filed as processed, the claim lost with an info line. Only a small image,
    // a logo or signature, is skipped for what it is.
    bool could_be_the_claim(std::size_t size) const { return size == 0 || size > limits.max_attachment_bytes; }

    void report_unreadable(const Attachment& a) {
        email.unreadable.push_back(fmt::format("'{}': {}", a.shown_name(), a.skipped));
        email.problems.push_back(email.unreadable.back());
    }

    // What cannot be read and is no attachment of its own (an encrypted body, a multipart
    // without its boundary): named beside the claim attachments too.
    void report_container(int depth, std::string what) {
        if (depth > 0) what = "in a forwarded message, " + what;
        email.unreadable.push_back(what);
        email.unreadable_elsewhere.push_back(what);
        email.problems.push_back(std::move(what));
    }

    // An opaque-signed S/MIME email carries the whole email inside one binary part: that
    // entity is walked as if it stood there. An encrypted one cannot be read at all.
    void open_smime(Attachment& a, Bytes der) {
        SmimeContent smime = smime_content(der);
        Bytes().swap(der);  // each level of nesting holds one copy of its content, not three
        switch (smime.kind) {
            case SmimeKind::SignedContent: {
                if (smime_nesting >= 4) {
                    a.skipped = "S/MIME signed data nested more than 4 deep: not opened";
                    report_unreadable(a);
                    break;
                }
                ++smime_nesting;
                GByteArray* content = g_byte_array_sized_new(static_cast<guint>(smime.content.size()));
                g_byte_array_append(content, smime.content.data(), static_cast<guint>(smime.content.size()));
                Bytes().swap(smime.content);
                GRef<GMimeStream> stream(g_mime_stream_mem_new_with_byte_array(content));  // owns `content`
                GRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.p));
                GRef<GMimeObject> inner(g_mime_parser_construct_part(parser.p, nullptr));
                if (inner.p) {
                    walk(inner.p, a.depth);
                    --smime_nesting;
                    return;
                }
                --smime_nesting;
                a.skipped = "S/MIME signed data whose content is not a MIME entity";
                report_unreadable(a);
                return;
            }
            case SmimeKind::Encrypted:
                a.skipped = "an S/MIME-encrypted email: its attachments cannot be read without the recipient's private key; ask the "
                            "sender to send it unencrypted";
                report_unreadable(a);
                break;
            case SmimeKind::Compressed:
                a.skipped = "S/MIME compressed data: not read";
                report_unreadable(a);
                break;
            case SmimeKind::NoContent:
                a.skipped = "an S/MIME signature or certificates, no content";
                break;
            case SmimeKind::Unreadable:
                a.skipped = "not a readable S/MIME (PKCS #7) structure: " + smime.error;
                report_unreadable(a);
                break;
        }
        email.attachments.push_back(std::move(a));
    }

    // "receipt.jpg.gz" -> "receipt.jpg": the name of one file compressed alone, from the last
    // part of the archive's name ("winmail.dat/receipt.jpg.gz" out of a winmail.dat). A tar's
    // suffix goes whole ("r.tgz" holding a JPEG is "r", and its bytes say what it is).
    static std::string without_compression_suffix(const std::string& path, std::size_t number) {
        const std::size_t slash = path.find_last_of('/');
        std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
        for (const std::string_view suffix : {".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".gz", ".bz2", ".xz"})
            if (name.size() >= suffix.size() && lower(name.substr(name.size() - suffix.size())) == suffix) {
                name.resize(name.size() - suffix.size());
                break;
            }
        return sanitize_filename(name, fmt::format("file-{}", number));
    }

    // The images and PDFs inside a ZIP or tar attachment are claim attachments of their
    // own, named by their file name (the archive's in `archive`). The files an archive holds
    // count towards max_parts like MIME parts do, and what all of one email's archives
    // decompress to towards max_archive_bytes.
    void open_archive(Attachment& archive, Bytes bytes) {
        if (bytes.empty()) {
            archive.skipped = "empty: the part has no content";
            email.attachments.push_back(std::move(archive));
            return;
        }
        if (archive_bytes_used >= limits.max_archive_bytes) {
            archive.skipped = fmt::format("not opened: this email's archives already came to {} bytes when decompressed (max_archive_bytes)",
                                          limits.max_archive_bytes);
            report_unreadable(archive);
            email.attachments.push_back(std::move(archive));
            return;
        }
        const std::size_t parts_left = limits.max_parts > parts_seen ? limits.max_parts - parts_seen : 0;
        const ArchiveLimits archive_limits{parts_left, limits.max_attachment_bytes, limits.max_archive_bytes - archive_bytes_used,
                                           limits.max_archive_bytes};
        // Judged by the name it will carry ("r.jpg " with a trailing space is r.jpg); a file
        // whose name says nothing ("receipt", a name that cannot be read) is read to look at.
        const auto claimable = [](std::string_view path) {
            const std::size_t slash = path.find_last_of('/');
            const std::string name = sanitize_filename(std::string(slash == std::string_view::npos ? path : path.substr(slash + 1)), "");
            const AttachmentKind kind = classify_declared("application/octet-stream", name).kind;
            return kind == AttachmentKind::Claim ? ArchiveWant::Read : kind == AttachmentKind::Unknown ? ArchiveWant::Sniff : ArchiveWant::Skip;
        };
        const auto shows_a_claim = [](const Bytes& head) { return classify_bytes(head.data(), head.size()).kind == AttachmentKind::Claim; };
        ArchiveListing listing = read_archive(bytes, archive_limits, claimable, shows_a_claim);
        // A directory that lists no file of a ZIP that holds some (a local file header): damaged
        // or crafted, and what it holds may be the claim.
        static constexpr std::uint8_t kLocalHeader[] = {'P', 'K', 3, 4};
        const bool holds_files = std::search(bytes.begin(), bytes.end(), std::begin(kLocalHeader), std::end(kLocalHeader)) != bytes.end();
        bytes = {};
        archive_bytes_used += listing.decompressed;
        if (listing.too_many_entries) {
            // The archive is refused, not the email: a receipt beside it still goes on, and an
            // email with nothing else fails naming the archive.
            archive.skipped = fmt::format("holds more files than max_parts ({}) leaves room for, with the email's other parts; not opened",
                                          limits.max_parts);
            report_unreadable(archive);
            email.attachments.push_back(std::move(archive));
            return;
        }
        // An Office or OpenDocument file is a ZIP too; one that came with no telling name is a
        // document, not a folder of receipts (a tar is never one).
        if (listing.format == "zip" && std::any_of(listing.entries.begin(), listing.entries.end(),
                        [](const ArchiveEntry& e) { return e.path == "[Content_Types].xml" || e.path == "mimetype"; })) {
            archive.skipped = "an Office or OpenDocument file (a ZIP of its own parts), not an image or PDF";
            email.attachments.push_back(std::move(archive));
            return;
        }
        parts_seen += listing.entries.size();
        for (ArchiveEntry& entry : listing.entries) {
            const std::size_t slash = entry.path.find_last_of('/');
            Attachment a;
            a.archive = archive.shown_name();
            a.depth = archive.depth;
            a.filename = sanitize_filename(slash == std::string::npos ? entry.path : entry.path.substr(slash + 1),
                                           fmt::format("file-{}", email.attachments.size() + 1));
            if (listing.format == "file") {
                a.filename = without_compression_suffix(archive.filename, email.attachments.size() + 1);
                // Its bytes showed an image or PDF: a name that says otherwise ("receipt.zip.gz",
                // "scan.txt.gz") loses its extension, and the bytes say what it is.
                if (const std::size_t dot = a.filename.rfind('.');
                    dot != std::string::npos && dot > 0 && classify_declared("application/octet-stream", a.filename).kind != AttachmentKind::Claim)
                    a.filename.resize(dot);
            }
            a.media_type = media_type_for(a.filename);
            // A file compressed alone was read because its bytes showed an image or PDF: they,
            // not its name ("receipt.pdf.gz" holding a JPEG), say which.
            if (const Classified seen = classify_bytes(entry.bytes.data(), entry.bytes.size());
                listing.format == "file" && seen.kind == AttachmentKind::Claim)
                a.media_type = seen.media_type;
            const Bytes head = std::move(entry.head);
            add_contained_file(std::move(a), std::move(entry.bytes), head, entry.wanted, entry.problem, false);
        }
        if (!listing.error.empty()) {
            archive.skipped = listing.error;
            report_unreadable(archive);
            email.attachments.push_back(std::move(archive));
        } else if (listing.entries.empty() && holds_files && listing.format != "tar") {
            archive.skipped = "a ZIP whose directory lists no files although it holds some: damaged, or made to hide them";
            report_unreadable(archive);
            email.attachments.push_back(std::move(archive));
        } else if (listing.entries.empty()) {
            archive.skipped = "an archive with no files in it";
            email.attachments.push_back(std::move(archive));
        }
    }

    // A file out of an archive or a winmail.dat, judged as a MIME part is: a claim attachment, or
    // skipped with its reason. `bytes` is the file when it was read whole; `head` its first
    // bytes when only those were looked at; `wanted` whether it was read at all; `problem`
    // why it could not be read. An archive is opened only out of a winmail.dat
    // (`may_open_archive`): Outlook wraps a zipped folder of receipts like any file, where an
    // archive inside an archive is more often a bomb than a folder.
    void add_contained_file(Attachment a, Bytes bytes, const Bytes& head, bool wanted, const std::string& problem, bool may_open_archive) {
        Classified kind = classify_declared(a.media_type, a.filename);
        // A file whose name says nothing: what its first bytes showed.
        if (const Bytes& seen = bytes.empty() ? head : bytes; kind.kind == AttachmentKind::Unknown && !seen.empty()) {
            kind = classify_bytes(seen.data(), seen.size());
            if (kind.kind == AttachmentKind::Claim) a.media_type = kind.media_type;
        }
        if (kind.kind == AttachmentKind::Archive && may_open_archive && problem.empty()) {
            a.filename = a.shown_name();
            a.archive.clear();
            open_archive(a, std::move(bytes));  // an empty one is said to be empty
            return;
        }
        if (!problem.empty() && wanted) {
            // Over max_attachment_bytes, or not readable whole: either may be the claim.
            a.skipped = problem;
            report_unreadable(a);
        } else if (kind.kind == AttachmentKind::Archive || kind.kind == AttachmentKind::Pkcs7 || kind.kind == AttachmentKind::Tnef) {
            a.skipped = fmt::format("an archive, winmail.dat or S/MIME file inside {}: not opened; ask the sender to attach the files themselves",
                                    a.archive);
            report_unreadable(a);
        } else if (const std::string why_not = not_read_reason(kind.kind); !why_not.empty()) {
            a.skipped = why_not;
            report_unreadable(a);
        } else if (!wanted || kind.kind != AttachmentKind::Claim) {
            a.skipped = fmt::format("not an image or PDF ({})", a.media_type);
        } else if (a.skipped = size_problem(a.media_type, bytes.size(), "file"); a.skipped.empty()) {
            a.bytes = std::move(bytes);
        } else if (could_be_the_claim(bytes.size())) {
            report_unreadable(a);
        }
        email.attachments.push_back(std::move(a));
    }

    // The files in an Outlook winmail.dat are claim attachments of their own, named by their
    // long file name (the winmail.dat's in `archive`, with the attached Outlook item's name
    // when one held them). They count towards max_parts like MIME parts do.
    void open_tnef(Attachment& tnef, Bytes bytes) {
        if (bytes.empty()) {
            tnef.skipped = "empty: the part has no content";
            email.attachments.push_back(std::move(tnef));
            return;
        }
        const std::size_t parts_left = limits.max_parts > parts_seen ? limits.max_parts - parts_seen : 0;
        TnefListing listing = read_tnef(bytes, TnefLimits{parts_left, limits.max_attachment_bytes, 4});
        Bytes().swap(bytes);
        if (tnef.depth == 0 && tnef_body.empty() && tnef_body_problem.empty()) {
            tnef_body = std::move(listing.body);
            tnef_body_problem = std::move(listing.body_problem);
            tnef_name = tnef.shown_name();
        }
        if (listing.too_many_files) {
            tnef.skipped = fmt::format("an Outlook TNEF attachment (winmail.dat) holding more files than max_parts ({}) leaves room for, "
                                       "with the email's other parts; not opened",
                                       limits.max_parts);
            report_unreadable(tnef);
            email.attachments.push_back(std::move(tnef));
            return;
        }
        parts_seen += listing.files.size();
        for (TnefFile& file : listing.files) {
            Attachment a;
            a.archive = tnef.shown_name();
            for (std::string item : file.items) {
                std::replace(item.begin(), item.end(), '/', '_');  // "Fwd: 1/2 receipts" is one name
                std::replace(item.begin(), item.end(), '\\', '_');
                a.archive += "/" + sanitize_filename(item, "item");
            }
            a.depth = tnef.depth;
            a.filename = sanitize_filename(file.name, fmt::format("file-{}", email.attachments.size() + 1));
            // The sender's MIME tag when it is one ("image/jpeg"), else the name's extension.
            const std::string tag = lower(file.media_type);
            const bool plain_tag = !tag.empty() && tag.size() <= 100 && tag.find('/') != std::string::npos &&
                                   std::all_of(tag.begin(), tag.end(), [](unsigned char c) {
                                       return std::isalnum(c) || c == '/' || c == '-' || c == '+' || c == '.';
                                   });
            a.media_type = plain_tag ? tag : media_type_for(a.filename);
            add_contained_file(std::move(a), std::move(file.bytes), {}, true, file.problem, true);
        }
        if (!listing.error.empty()) {
            tnef.skipped = "an Outlook TNEF attachment (winmail.dat) that cannot be read: " + listing.error;
            report_unreadable(tnef);
            email.attachments.push_back(std::move(tnef));
        } else if (listing.files.empty()) {
            tnef.skipped = "an Outlook TNEF attachment (winmail.dat) with no files in it";
            email.attachments.push_back(std::move(tnef));
        }
    }

    // A multipart GMime found no parts in while it holds text: without a boundary parameter
    // (GMime then keeps the whole body as the multipart's preamble), or with one that never
    // appears. Whatever it carries, attachments included, cannot be told apart.
    void check_partless(GMimeObject* object, GMimeMultipart* mp, int depth) {
        if (blank(g_mime_multipart_get_prologue(mp)) && blank(g_mime_multipart_get_epilogue(mp))) return;  // empty: hides nothing
        GMimeContentType* ct = g_mime_object_get_content_type(object);
        const std::string mime_type = ct ? lower(GString_(g_mime_content_type_get_mime_type(ct)).str()) : "multipart/mixed";
        const std::string type = printable(mime_type.c_str(), 60);
        const char* boundary = g_mime_object_get_content_type_parameter(object, "boundary");
        std::string what = blank(boundary)
                               ? fmt::format("{} without a boundary: its attachments cannot be told apart", type)
                               : fmt::format("{} whose boundary \"{}\" never appears: its attachments cannot be told apart", type,
                                             printable(boundary, 70));
        report_container(depth, std::move(what));
    }
};

std::string address_list(InternetAddressList* list) {
    if (!list) return {};
    return GString_(internet_address_list_to_string(list, nullptr, FALSE)).str();
}

// GMime gives no address at all for a header it cannot parse: "@SUM(A1) <x@example.my>" (an
// unquoted @ in the name) became an empty sender in the audit row and the review screen. The
// header as written, decoded, on one line and bounded, tells a person more than nothing.
std::string address_header(GMimeMessage* message, InternetAddressList* parsed, const char* name) {
    std::string addresses = address_list(parsed);
    if (!addresses.empty()) return addresses;
    const char* raw = g_mime_object_get_header(GMIME_OBJECT(message), name);
    if (!raw) return {};
    GString_ decoded(g_mime_utils_header_decode_text(nullptr, raw));
    std::string written;
    for (const char c : decoded.str()) {
        const bool space = c == '\t' || c == '\r' || c == '\n' || c == ' ';
        if (space) {
            if (!written.empty() && written.back() != ' ') written += ' ';
        } else if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
            written += c;
        }
    }
    while (!written.empty() && written.back() == ' ') written.pop_back();
    if (written.size() > 1000) {
        std::size_t cut = 1000;
        while (cut > 0 && (static_cast<unsigned char>(written[cut]) & 0xC0) == 0x80) --cut;  // a UTF-8 boundary
        written.resize(cut);
    }
    return written;
}

}  // namespace

void route_library_messages_to(Logger* logger) {
    init_gmime();
    library_logger.store(logger);
}

void stop_routing_library_messages_to(Logger* logger) {
    Logger* expected = logger;
    library_logger.compare_exchange_strong(expected, nullptr);
}

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

std::string sanitize_filename(const std::string& name, const std::string& fallback) {
    // Valid UTF-8 first: the name goes into JSON, and the cut below steps back over UTF-8
    // continuation bytes (150 of them with no lead byte cut a name down to its extension alone).
    std::string base = valid_utf8(name);
    const auto slash = base.find_last_of("/\\");
    if (slash != std::string::npos) base = base.substr(slash + 1);
    std::string out;
    for (std::size_t i = 0; i < base.size(); ++i) {
        const auto c = static_cast<unsigned char>(base[i]);
        if (c < 0x20 || c == 0x7f || c == ':' || c == '*' || c == '?' || c == '"' || c == '<' || c == '>' || c == '|') continue;
        // Invisible characters that reorder or hide text: "\u202Egpj.exe" shows as "exe.jpg" in a
        // review screen. Dropped (UTF-8): C1 controls U+0080-009F; U+200B-200F zero-width
        // spaces and marks; U+202A-202E embeddings and overrides; U+2060-2069 joiners and
        // isolates; U+FEFF.
        const auto at = [&](std::size_t k) { return i + k < base.size() ? static_cast<unsigned char>(base[i + k]) : 0; };
        if (c == 0xC2 && at(1) >= 0x80 && at(1) <= 0x9F) { ++i; continue; }
        if (c == 0xE2 && ((at(1) == 0x80 && ((at(2) >= 0x8B && at(2) <= 0x8F) || (at(2) >= 0xAA && at(2) <= 0xAE))) ||
                          (at(1) == 0x81 && at(2) >= 0xA0 && at(2) <= 0xA9))) { i += 2; continue; }
        if (c == 0xEF && at(1) == 0xBB && at(2) == 0xBF) { i += 2; continue; }
        out += static_cast<char>(c);
    }
    while (!out.empty() && (out.front() == '.' || out.front() == ' ')) out.erase(out.begin());
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (out.size() > 150) {
        // Keep the extension; cut on a UTF-8 boundary.
        const auto dot = out.rfind('.');
        std::string ext = dot != std::string::npos && out.size() - dot <= 10 ? out.substr(dot) : "";
        std::size_t cut = 150 - ext.size();
        while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
        out = out.substr(0, cut) + ext;
        while (!out.empty() && (out.front() == '.' || out.front() == ' ')) out.erase(out.begin());
    }
    return out.empty() ? fallback : out;
}

namespace {

// Whether a claim file's bytes reach their format's end: a JPEG's end-of-image marker, a
// PNG's IEND chunk, a PDF's %%EOF (trailing zeros or line ends allowed). Other formats: true.
bool reaches_its_end(const std::string& media_type, const Bytes& bytes) {
    std::size_t end = bytes.size();
    while (end > 0 && (bytes[end - 1] == 0 || bytes[end - 1] == '\n' || bytes[end - 1] == '\r' || bytes[end - 1] == ' ')) --end;
    const std::string_view tail(reinterpret_cast<const char*>(bytes.data()) + (end > 1024 ? end - 1024 : 0), end > 1024 ? 1024 : end);
    if (media_type == "image/jpeg") return end >= 2 && bytes[end - 2] == 0xFF && bytes[end - 1] == 0xD9;
    if (media_type == "image/png") return tail.find("IEND") != std::string_view::npos;
    if (media_type == "application/pdf") return tail.find("%%EOF") != std::string_view::npos;
    return true;
}

// An email cut short in transit (its top-level multipart never closes) cuts its last
// attachment with it: that file then failed as "truncated JPEG: 51% of the page is missing",
// and the operator asked the member for a new photo where the email only needed sending
// again. Said as what it is, on the last file read, when that file stops before its end.
void mark_cut_off_attachment(GMimeObject* top, const std::uint8_t* data, std::size_t size, ParsedEmail& email) {
    if (!top || !GMIME_IS_MULTIPART(top)) return;
    const char* boundary = g_mime_object_get_content_type_parameter(top, "boundary");
    if (!boundary || !*boundary) return;
    const std::string close = std::string("--") + boundary + "--";
    const std::string_view raw(reinterpret_cast<const char*>(data), size);
    if (raw.find(close) != std::string_view::npos) return;
    for (auto a = email.attachments.rbegin(); a != email.attachments.rend(); ++a) {
        if (!a->skipped.empty() || a->bytes.empty()) continue;
        if (reaches_its_end(a->media_type, a->bytes)) return;
        a->bytes.clear();
        a->skipped = "the email ends early (its closing MIME boundary is missing) and this file stops with it: the email was "
                     "cut short on its way; ask the sender to send the same email again";
        email.unreadable.push_back(fmt::format("'{}': {}", a->shown_name(), a->skipped));
        email.problems.push_back(email.unreadable.back());
        return;
    }
}

}  // namespace

ParsedEmail parse_email(const std::uint8_t* data, std::size_t size, const EmailLimits& limits) {
    init_gmime();
    ParsedEmail email;
    // An empty file: GMime asserts on a null buffer (three "critical" lines in the log).
    if (size == 0) {
        email.problems.push_back("not an email: the file is empty");
        return email;
    }
    GRef<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(reinterpret_cast<const char*>(data), size));
    GRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.p));
    GRef<GMimeMessage> message(g_mime_parser_construct_message(parser.p, nullptr));
    if (!message.p) {
        email.problems.push_back("not an email: no RFC 822 headers could be read");
        return email;
    }
    if (const char* id = g_mime_message_get_message_id(message.p)) email.message_id = id;
    if (const char* subject = g_mime_message_get_subject(message.p)) email.subject = subject;  // RFC 2047 decoded
    email.from = address_header(message.p, g_mime_message_get_from(message.p), "From");
    email.to = address_header(message.p, g_mime_message_get_to(message.p), "To");
    if (GDateTime* date = g_mime_message_get_date(message.p)) email.date_iso = GString_(g_date_time_format_iso8601(date)).str();
    // A subject of megabytes is an attack or a mistake; keep a readable prefix.
    if (email.subject.size() > 1000) email.subject.resize(1000);

    Walker walker{limits, email, 0, {}, {}, 0, 0, {}, {}, {}, {}};
    walker.walk(g_mime_message_get_mime_part(message.p), 0);
    mark_cut_off_attachment(g_mime_message_get_mime_part(message.p), data, size, email);
    email.body_text = !walker.plain.empty()  ? walker.plain
                      : !walker.html.empty() ? html_to_text(walker.html)
                      : !walker.rtf.empty()  ? rtf_to_text(walker.rtf)
                                             : walker.tnef_body;
    // A forwarded email's text follows ours, under the line Gmail puts above an inline forward.
    const std::string forwarded = !walker.forwarded_plain.empty() ? walker.forwarded_plain
                                  : !walker.forwarded_html.empty() ? html_to_text(walker.forwarded_html)
                                                                   : std::string();
    if (forwarded.find_first_not_of(" \t\r\n") != std::string::npos)
        email.body_text += (email.body_text.empty() ? "" : "\n\n") + std::string("---------- Forwarded message ----------\n") + forwarded;
    // The member id and policy number may be in the body that could not be read: said beside
    // the attachments (a reviewer sees it in skipped_attachments, and in the reason of an
    // email that is skipped). It does not fail the email: a body hides no attachment.
    if (walker.plain.empty() && walker.html.empty() && walker.rtf.empty() && !walker.tnef_body_problem.empty()) {
        const std::string what = fmt::format("'{}': {}; the email's text was {}", walker.tnef_name, walker.tnef_body_problem,
                                             walker.tnef_body.empty() ? "not read" : "read only in part");
        email.unreadable_elsewhere.push_back(what);
        email.problems.push_back(what);
    }
    if (email.body_text.size() > limits.max_body_chars) {
        std::size_t cut = limits.max_body_chars;
        while (cut > 0 && (static_cast<unsigned char>(email.body_text[cut]) & 0xC0) == 0x80) --cut;  // on a UTF-8 boundary
        email.body_text.resize(cut);
        email.problems.push_back(fmt::format("body cut to {} characters", limits.max_body_chars));
    }
    if (email.too_many_parts) email.problems.push_back(fmt::format("more than {} MIME parts (max_parts)", limits.max_parts));
    return email;
}

// ---------------------------------------------------------------------------------------
std::string html_to_text(const std::string& html) {
    std::string out;
    std::size_t i = 0;
    bool skip = false;  // inside <style>, <script> or <title>
    while (i < html.size()) {
        if (html[i] == '<') {
            const std::size_t close = html.find('>', i);
            if (close == std::string::npos) break;
            std::string name;
            for (std::size_t k = i + 1; k < close; ++k) {
                const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(html[k])));
                if (std::isalnum(static_cast<unsigned char>(c)) || c == '/') name += c;
                else break;
            }
            if (name == "style" || name == "script" || name == "title") skip = true;
            if (name == "/style" || name == "/script" || name == "/title") skip = false;
            if (name == "br" || name == "br/" || name == "p" || name == "/p" || name == "div" || name == "/div" || name == "tr" ||
                name == "/tr" || name == "/li" || name == "/h1" || name == "/h2" || name == "/h3" || name == "/table")
                out += '\n';
            else if (name == "li")
                out += "\n- ";
            else if (name == "/td" || name == "/th")
                out += ' ';
            i = close + 1;
            continue;
        }
        if (skip) {
            ++i;
            continue;
        }
        if (html[i] == '&') {
            // An entity is short: looking further made a text of many '&' quadratic.
            const std::size_t near = std::string_view(html).substr(i, 10).find(';');
            const std::size_t semi = near == std::string_view::npos ? std::string::npos : i + near;
            if (semi != std::string::npos && semi - i <= 8) {
                const std::string entity = html.substr(i + 1, semi - i - 1);
                static const std::pair<const char*, const char*> kEntities[] = {
                    {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"#39", "'"}, {"nbsp", " "}, {"#160", " "}};
                bool replaced = false;
                for (const auto& [e, r] : kEntities)
                    if (entity == e) {
                        out += r;
                        replaced = true;
                    }
                if (replaced) {
                    i = semi + 1;
                    continue;
                }
            }
        }
        // Line breaks in HTML source are spaces; only tags make lines.
        const char c = html[i++];
        out += c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
    }
    // Tidy: trim lines, collapse inner whitespace, at most one blank line in a row.
    std::string tidy;
    int blanks = 0;
    std::size_t b = 0;
    for (std::size_t k = 0; k <= out.size(); ++k) {
        if (k < out.size() && out[k] != '\n') continue;
        std::string line;
        for (std::size_t m = b; m < k; ++m) {
            char c = out[m] == '\t' || out[m] == '\r' ? ' ' : out[m];
            if (c == ' ' && (line.empty() || line.back() == ' ')) continue;
            line += c;
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        b = k + 1;
        if (line.empty()) {
            if (tidy.empty() || ++blanks > 1) continue;
        } else {
            blanks = 0;
        }
        tidy += line + "\n";
    }
    while (!tidy.empty() && (tidy.back() == '\n')) tidy.pop_back();
    return tidy;
}

}  // namespace docpipe::mail
