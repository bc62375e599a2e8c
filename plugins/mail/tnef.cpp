#include "tnef.hpp"

#include "email.hpp"  // html_to_text, valid_utf8
#include "rtf.hpp"    // append_code_point, decode_code_page, decompress_rtf, rtf_to_text

#include <cstdint>
#include <optional>
#include <string_view>

#include <fmt/core.h>
#include <glib.h>

namespace docpipe::mail {

namespace {

constexpr std::uint32_t kSignature = 0x223E9F78;
constexpr std::uint8_t kLevelMessage = 1, kLevelAttachment = 2;
constexpr std::size_t kMostPadding = 32;

// Attribute ids (type << 16 | id), MS-OXTNEF 2.1.3.
constexpr std::uint32_t kAttachRendData = 0x00069002;  // starts an attachment
constexpr std::uint32_t kAttachTitle = 0x00018010;     // its 8.3 name
constexpr std::uint32_t kAttachData = 0x0006800F;      // its bytes
constexpr std::uint32_t kAttachment = 0x00069005;      // its MAPI properties
constexpr std::uint32_t kOemCodepage = 0x00069007;     // the code page of the stream's 8-bit strings
constexpr std::uint32_t kBody = 0x0002800C;            // the message's plain-text body
constexpr std::uint32_t kMsgProps = 0x00069003;        // the message's MAPI properties (PR_BODY among them)

// MAPI property ids and types (MS-OXPROPS, MS-OXCDATA).
constexpr std::uint16_t kPropBody = 0x1000, kPropRtfCompressed = 0x1009, kPropHtml = 0x1013, kPropInternetCodePage = 0x3FDE,
                        kPropDisplayName = 0x3001, kPropAttachDataObj = 0x3701, kPropAttachFilename = 0x3704,
                        kPropAttachMethod = 0x3705, kPropAttachLongFilename = 0x3707, kPropAttachMimeTag = 0x370E;
constexpr std::uint16_t kTypeString8 = 0x001E, kTypeUnicode = 0x001F, kTypeBinary = 0x0102, kTypeObject = 0x000D, kTypeLong = 0x0003;
constexpr std::uint16_t kMultiValued = 0x1000;
constexpr std::uint32_t kAttachEmbeddedMessage = 5, kAttachOle = 6;

// Reads little-endian values from a span; every read checks the bytes left first.
class Cursor {
public:
    Cursor(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    std::size_t left() const { return size_ - pos_; }
    std::size_t pos() const { return pos_; }
    bool u8(std::uint8_t& v) {
        if (left() < 1) return false;
        v = data_[pos_++];
        return true;
    }
    bool u32(std::uint32_t& v) {
        if (left() < 4) return false;
        v = static_cast<std::uint32_t>(data_[pos_]) | static_cast<std::uint32_t>(data_[pos_ + 1]) << 8 |
            static_cast<std::uint32_t>(data_[pos_ + 2]) << 16 | static_cast<std::uint32_t>(data_[pos_ + 3]) << 24;
        pos_ += 4;
        return true;
    }
    bool u16(std::uint16_t& v) {
        if (left() < 2) return false;
        v = static_cast<std::uint16_t>(data_[pos_] | data_[pos_ + 1] << 8);
        pos_ += 2;
        return true;
    }
    bool skip(std::size_t n) {
        if (left() < n) return false;
        pos_ += n;
        return true;
    }
    // `n` bytes, then padding to a multiple of 4 (how MAPI values are laid out).
    bool padded(std::size_t n, std::string_view& out) {
        if (left() < n) return false;
        out = {reinterpret_cast<const char*>(data_ + pos_), n};
        pos_ += n;
        const std::size_t pad = (4 - n % 4) % 4;
        pos_ += std::min(pad, left());  // the last value's padding may be left off
        return true;
    }
    const std::uint8_t* here() const { return data_ + pos_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// A name up to its first NUL, in the sender's code page (attOemCodepage: 1252 in Western
// Windows, 936 in Chinese, 932 in Japanese), as UTF-8. Valid UTF-8 is kept as it is; bytes no
// conversion explains become '_' (the name is sanitised later; its extension is what matters).
std::string string8(std::string_view raw, std::uint32_t code_page) {
    return decode_code_page(raw.substr(0, raw.find('\0')), code_page, true);
}

// UTF-16LE up to its first NUL, as UTF-8; a lone surrogate becomes U+FFFD.
std::string utf16le(std::string_view raw) {
    std::string out;
    const auto unit = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(raw[i]) | static_cast<unsigned char>(raw[i + 1]) << 8);
    };
    for (std::size_t i = 0; i + 1 < raw.size(); i += 2) {
        std::uint32_t cp = unit(i);
        if (cp == 0) break;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 3 < raw.size() && unit(i + 2) >= 0xDC00 && unit(i + 2) <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (unit(i + 2) - 0xDC00);
            i += 2;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD;
        }
        append_code_point(out, cp);
    }
    return out;
}

// The size of one value of a fixed-size MAPI type, 0 for a variable-size or unknown one.
std::size_t fixed_size(std::uint16_t type) {
    switch (type) {
        case 0x0001:  // PT_NULL
        case 0x0002:  // PT_SHORT (2 bytes, padded to 4)
        case 0x0003:  // PT_LONG
        case 0x0004:  // PT_FLOAT
        case 0x000A:  // PT_ERROR
        case 0x000B:  // PT_BOOLEAN (padded to 4)
            return 4;
        case 0x0005:  // PT_DOUBLE
        case 0x0006:  // PT_CURRENCY
        case 0x0007:  // PT_APPTIME
        case 0x0014:  // PT_I8
        case 0x0040:  // PT_SYSTIME
            return 8;
        case 0x0048:  // PT_CLSID
            return 16;
        default:
            return 0;
    }
}

// What MAPI properties say that a claim needs: an attachment's, or the message's own body.
struct Props {
    std::string long_name, short_name, display_name, mime_tag, body;
    std::string_view rtf_compressed, html;  // the message's rich-text and HTML bodies (views into the stream)
    std::uint32_t internet_code_page = 0;   // the HTML body's code page
    bool read_whole = false;                // every property was read (none of a type whose size is unknown)
    std::optional<std::uint32_t> method;
    std::string_view data_obj;  // PR_ATTACH_DATA_OBJ / _BIN: an attached item, or a file's bytes (a view into the stream)
    bool data_is_binary = false;  // PT_BINARY (a file's bytes) rather than PT_OBJECT (an item or OLE object)
};

// Reads the property list; a property whose type is not known ends the reading there, with
// what was found before it kept (the ones a claim needs come first in what Outlook writes).
Props read_props(std::string_view record, std::uint32_t code_page) {
    Props props;
    Cursor in(reinterpret_cast<const std::uint8_t*>(record.data()), record.size());
    std::uint32_t count = 0;
    if (!in.u32(count)) return props;
    for (std::uint32_t i = 0; i < count; ++i) {
        std::uint32_t tag = 0;
        if (!in.u32(tag)) return props;
        const auto type = static_cast<std::uint16_t>(tag & 0xFFFF);
        const auto id = static_cast<std::uint16_t>(tag >> 16);
        if (id >= 0x8000) {  // a named property: its GUID, then an id or a UTF-16 name
            std::uint32_t kind = 0, length = 0;
            std::string_view name;
            if (!in.skip(16) || !in.u32(kind)) return props;
            if (kind == 0 ? !in.skip(4) : kind != 1 || !in.u32(length) || !in.padded(length, name)) return props;
        }
        const std::uint16_t base = type & ~kMultiValued;
        // PT_SVREID (0x00FB) is laid out as a binary value is.
        const bool variable = base == kTypeString8 || base == kTypeUnicode || base == kTypeBinary || base == kTypeObject || base == 0x00FB;
        if (!variable && fixed_size(base) == 0) return props;  // unknown type: its size cannot be known
        std::uint32_t values = 1;
        // Variable-size values carry a count even when single-valued; fixed-size ones only when multi-valued.
        if ((variable || (type & kMultiValued)) && !in.u32(values)) return props;
        if (values > in.left() / 4) return props;  // every value takes at least 4 bytes
        for (std::uint32_t v = 0; v < values; ++v) {
            std::string_view value;
            if (variable) {
                std::uint32_t length = 0;
                if (!in.u32(length) || !in.padded(length, value)) return props;
            } else {
                if (!in.padded(fixed_size(base), value)) return props;
            }
            if (v != 0 || (type & kMultiValued)) continue;
            const auto text = [&] { return base == kTypeUnicode ? utf16le(value) : string8(value, code_page); };
            if (id == kPropAttachLongFilename && (base == kTypeUnicode || base == kTypeString8)) props.long_name = text();
            if (id == kPropAttachFilename && (base == kTypeUnicode || base == kTypeString8)) props.short_name = text();
            if (id == kPropDisplayName && (base == kTypeUnicode || base == kTypeString8)) props.display_name = text();
            if (id == kPropBody && (base == kTypeUnicode || base == kTypeString8)) props.body = text();
            if (id == kPropAttachMimeTag && (base == kTypeUnicode || base == kTypeString8)) props.mime_tag = text();
            if (id == kPropRtfCompressed && base == kTypeBinary) props.rtf_compressed = value;
            if (id == kPropHtml && (base == kTypeBinary || base == kTypeString8)) props.html = value;
            const auto long_value = [&] {
                return static_cast<std::uint32_t>(static_cast<unsigned char>(value[0]) | static_cast<unsigned char>(value[1]) << 8 |
                                                  static_cast<unsigned char>(value[2]) << 16 |
                                                  static_cast<std::uint32_t>(static_cast<unsigned char>(value[3])) << 24);
            };
            if (id == kPropAttachMethod && base == kTypeLong) props.method = long_value();
            if (id == kPropInternetCodePage && base == kTypeLong) props.internet_code_page = long_value();
            if (id == kPropAttachDataObj && (base == kTypeObject || base == kTypeBinary)) {
                props.data_obj = value;
                props.data_is_binary = base == kTypeBinary;
            }
        }
    }
    props.read_whole = true;
    return props;
}

// Only white space (a PR_BODY of "\r\n" next to the real body in rich text).
bool blank(std::string_view text) { return text.find_first_not_of(" \t\r\n") == std::string_view::npos; }

bool padding_only(const std::uint8_t* data, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i)
        if (data[i] != 0 && data[i] != '\r' && data[i] != '\n' && data[i] != ' ') return false;
    return true;
}

bool starts_with_signature(std::string_view bytes) {
    return bytes.size() >= 4 && static_cast<unsigned char>(bytes[0]) == 0x78 && static_cast<unsigned char>(bytes[1]) == 0x9F &&
           static_cast<unsigned char>(bytes[2]) == 0x3E && static_cast<unsigned char>(bytes[3]) == 0x22;
}

class Reader {
public:
    Reader(const TnefLimits& limits, TnefListing& listing) : limits_(limits), listing_(listing) {}

    // Returns "" when the stream was read to its end, else why not.
    std::string read(const std::uint8_t* data, std::size_t size, const std::vector<std::string>& items, int nesting) {
        Cursor in(data, size);
        std::uint32_t signature = 0;
        if (!in.u32(signature) || signature != kSignature) return "not a TNEF stream: its first bytes are not TNEF's signature";
        if (!in.skip(2)) return "cut short after its signature";
        std::optional<Pending> pending;
        std::string why;
        std::uint32_t code_page = 0;
        std::size_t records = 0;
        std::string damage;  // the first record that failed its checksum, when the reading went on
        while (in.left() > 0 && why.empty() && !listing_.too_many_files) {
            const std::size_t at = in.pos();
            std::uint8_t level = 0;
            std::uint32_t id = 0, length = 0;
            std::uint16_t checksum = 0;
            // A few zeros or line breaks a mail program added after the last record (not in place
            // of every record, nor a zeroed tail long enough to have held an attachment).
            if (records > 0 && size - at <= kMostPadding && padding_only(data + at, size - at)) break;
            if (!in.u8(level) || !in.u32(id) || !in.u32(length)) {
                why = fmt::format("cut short in the record at byte {}", at);
                break;
            }
            if (level != kLevelMessage && level != kLevelAttachment) {
                why = fmt::format("a record of level {} at byte {} (TNEF has levels 1 and 2): damaged", level, at);
                break;
            }
            if (length > in.left() || in.left() - length < 2) {
                why = fmt::format("the record at byte {} says it holds {} bytes and a 2-byte checksum, more than the {} left: cut short or "
                                  "damaged",
                                  at, length, in.left());
                break;
            }
            const std::string_view value(reinterpret_cast<const char*>(in.here()), length);
            in.skip(length);
            in.u16(checksum);
            ++records;
            std::uint32_t sum = 0;
            for (const char c : value) sum += static_cast<unsigned char>(c);
            const bool intact = (sum & 0xFFFF) == checksum;
            // A record that fails its checksum, other than a file's bytes or properties (judged
            // below, file by file): its length may be what changed, and it may have swallowed
            // whole attachments. The reading goes on (what follows may be whole), and the
            // winmail.dat is named as damaged.
            if (!intact && id != kAttachData && id != kAttachment && damage.empty())
                damage = fmt::format("the record at byte {} does not match its checksum: damaged, and attachments may be missing", at);
            if (level == kLevelMessage && id == kOemCodepage && intact && length >= 4)
                code_page = static_cast<std::uint32_t>(static_cast<unsigned char>(value[0]) | static_cast<unsigned char>(value[1]) << 8 |
                                                       static_cast<unsigned char>(value[2]) << 16 |
                                                       static_cast<std::uint32_t>(static_cast<unsigned char>(value[3])) << 24);
            // The message's own body, for an email sent as TNEF alone (its MIME has no text part).
            if (level == kLevelMessage && nesting == 0 && id == kMsgProps && !intact)
                body_problem_ = "the record of the message's properties does not match its checksum: its text may be lost";
            if (level == kLevelMessage && nesting == 0 && intact) {
                if (id == kBody && blank(listing_.body)) listing_.body = string8(value, code_page);
                if (id == kMsgProps) {
                    Props message = read_props(value, code_page);
                    if (blank(listing_.body)) listing_.body = std::move(message.body);
                    // Outlook's "rich text" and HTML bodies, read only when there is no plain one.
                    if (rtf_body_.empty()) rtf_body_ = message.rtf_compressed;
                    if (html_body_.empty()) {
                        html_body_ = message.html.substr(0, message.html.find('\0'));
                        html_code_page_ = message.internet_code_page;
                        stream_code_page_ = code_page;
                    }
                    if (!message.read_whole && message.body.empty() && message.rtf_compressed.empty() && message.html.empty())
                        body_problem_ = "the message's properties hold one of a type docpipe does not know, and were not read past it: "
                                        "its text may be there";
                }
            }
            if (level != kLevelAttachment) continue;
            const bool known = id == kAttachRendData || id == kAttachTitle || id == kAttachData || id == kAttachment;
            // An attachment begins at its rendering record. One whose rendering record is damaged
            // or missing begins at its first other record, and a second data or property record
            // is the next attachment's: none of its records is dropped or overwritten.
            const bool begins = id == kAttachRendData || (known && !pending) || (id == kAttachData && pending && pending->has_data) ||
                                (id == kAttachment && pending && pending->props_seen) ||
                                (id == kAttachTitle && pending && !pending->title.empty());
            if (begins) {
                if (pending) finish(*pending, items, nesting);
                if (listing_.too_many_files) break;
                pending.emplace();
            }
            if (!pending || id == kAttachRendData) continue;
            if (id == kAttachTitle) {
                pending->title = string8(value, code_page);
            } else if (id == kAttachData) {
                pending->has_data = true;
                if (!intact)
                    pending->problem = fmt::format("damaged: its bytes do not match their checksum (record at byte {})", at);
                else if (value.size() > limits_.max_file_bytes)
                    pending->problem =
                        fmt::format("{} bytes is over the {}-byte limit (max_attachment_bytes)", value.size(), limits_.max_file_bytes);
                else
                    pending->data = value;
            } else if (id == kAttachment) {
                pending->props_seen = true;
                pending->props_intact = intact;
                pending->props_at = at;
                // A property record that fails its checksum says nothing that can be trusted
                // (one changed byte made "application/pdf" a type that is no PDF): the file is
                // then judged by its title and its bytes, as if it had none.
                if (intact) pending->props = read_props(value, code_page);
                else pending->props_damaged = fmt::format("damaged: its properties do not match their checksum (record at byte {})", at);
                // Its length may be what changed, swallowing the attachments after it.
                if (!intact && damage.empty())
                    damage = fmt::format("the record at byte {} does not match its checksum: damaged, and attachments may be missing", at);
            }
        }
        if (pending && !listing_.too_many_files) {
            // The stream ended inside this attachment's records: its file is not all there.
            const bool data_in_props = pending->props.data_is_binary && !pending->props.data_obj.empty();
            if (!why.empty() && !pending->has_data && !data_in_props && pending->problem.empty())
                pending->problem = "cut short before its data: " + why;
            finish(*pending, items, nesting);
        }
        return why.empty() ? damage : why;
    }

    std::string_view rtf_body() const { return rtf_body_; }
    std::string_view html_body() const { return html_body_; }
    // The HTML's own code page (PR_INTERNET_CPID), 0 when it has none.
    std::uint32_t html_code_page() const { return html_code_page_; }
    std::uint32_t stream_code_page() const { return stream_code_page_; }
    const std::string& body_problem() const { return body_problem_; }

private:
    struct Pending {
        std::string title;
        std::string_view data;
        bool has_data = false;
        std::string problem;
        Props props;
        bool props_seen = false;
        bool props_intact = true;
        std::size_t props_at = 0;
        std::string props_damaged;  // why the property record was not read
    };

    void finish(Pending& p, const std::vector<std::string>& items, int nesting) {
        const std::string name = !p.props.long_name.empty()    ? p.props.long_name
                                 : !p.title.empty()            ? p.title
                                 : !p.props.short_name.empty() ? p.props.short_name
                                                               : p.props.display_name;
        const bool item_inside = p.props.method == kAttachEmbeddedMessage ||
                                 (!p.has_data && !p.props.data_is_binary && !p.props.data_obj.empty() &&
                                  (starts_with_signature(p.props.data_obj) ||
                                   (p.props.data_obj.size() > 16 && starts_with_signature(p.props.data_obj.substr(16)))));
        if (item_inside) {
            open_item(p, name.empty() ? "an attached Outlook item" : name, items, nesting);
            return;
        }
        if (p.props.method == kAttachOle) {
            // A picture or document pasted into an Outlook rich-text email is an OLE object:
            // its bytes are an OLE storage, not the picture. A person must look.
            p.problem = "an OLE object pasted into an Outlook rich-text email (a picture or document inside an OLE storage): docpipe "
                        "does not read these; ask the sender to attach the picture as a file";
        } else if ((!p.has_data || (p.data.empty() && p.problem.empty())) && p.props.data_is_binary && !p.props.data_obj.empty()) {
            // Written with every attribute as a MAPI property (Exchange's TNEF): the file's
            // bytes are PR_ATTACH_DATA_BIN, checked by the property record's checksum.
            p.has_data = true;
            if (!p.props_intact)
                p.problem = fmt::format("damaged: its bytes do not match their checksum (record at byte {})", p.props_at);
            else if (p.props.data_obj.size() > limits_.max_file_bytes)
                p.problem = fmt::format("{} bytes is over the {}-byte limit (max_attachment_bytes)", p.props.data_obj.size(),
                                        limits_.max_file_bytes);
            else
                p.data = p.props.data_obj;
        }
        if (!add_file()) return;
        TnefFile file;
        file.name = name;
        file.media_type = p.props.mime_tag;
        file.items = items;
        file.problem = p.problem;
        if (file.problem.empty() && !p.has_data)
            file.problem = !p.props_damaged.empty() ? p.props_damaged : "no data: the attachment holds no file (a link or an embedded object)";
        if (file.problem.empty()) file.bytes.assign(p.data.begin(), p.data.end());
        listing_.files.push_back(std::move(file));
    }

    // An attached Outlook item (a forwarded email): its own TNEF stream, after a 16-byte
    // interface id when the property is an object.
    void open_item(Pending& p, const std::string& name, const std::vector<std::string>& items, int nesting) {
        std::vector<std::string> path = items;
        path.push_back(name);
        std::string_view stream = p.props.data_obj;
        if (!starts_with_signature(stream) && stream.size() > 16 && starts_with_signature(stream.substr(16))) stream.remove_prefix(16);
        std::string why;
        if (stream.empty()) why = "its content is not in the TNEF stream";
        else if (nesting + 1 > limits_.max_nesting) why = fmt::format("attached items nested more than {} deep: not opened", limits_.max_nesting);
        else why = read(reinterpret_cast<const std::uint8_t*>(stream.data()), stream.size(), path, nesting + 1);
        if (why.empty() || listing_.too_many_files || !add_file()) return;
        TnefFile unread;
        unread.name = name;
        unread.items = items;
        unread.problem = "an attached Outlook item that cannot be read: " + why;
        listing_.files.push_back(std::move(unread));
    }

    bool add_file() {
        if (listing_.files.size() < limits_.max_files) return true;
        listing_.too_many_files = true;
        return false;
    }

    const TnefLimits& limits_;
    TnefListing& listing_;
    std::string_view rtf_body_, html_body_;  // views into the stream read_tnef was given
    std::uint32_t html_code_page_ = 0, stream_code_page_ = 0;
    std::string body_problem_;  // the message's body may be lost, and why
};

}  // namespace

TnefListing read_tnef(const Bytes& bytes, const TnefLimits& limits) {
    TnefListing listing;
    Reader reader(limits, listing);
    listing.error = reader.read(bytes.data(), bytes.size(), {}, 0);
    // An email written in Outlook's rich text (or HTML) carries no plain-text body in its
    // winmail.dat; its text is read from the compressed RTF (or the HTML) instead.
    if (!blank(listing.body)) return listing;
    if (!reader.html_body().empty()) {
        // In its own code page when it names one; else the stream's, unless already UTF-8.
        const bool own = reader.html_code_page() != 0;
        listing.body = html_to_text(decode_code_page(reader.html_body(), own ? reader.html_code_page() : reader.stream_code_page(), !own));
    } else if (!reader.rtf_body().empty()) {
        DecompressedRtf rtf = decompress_rtf(reader.rtf_body(), limits.max_file_bytes);
        if (!rtf.problem.empty()) listing.body_problem = "its rich-text body (PR_RTF_COMPRESSED) cannot be read whole: " + rtf.problem;
        if (!rtf.rtf.empty()) listing.body = rtf_to_text(rtf.rtf);
    } else {
        listing.body_problem = reader.body_problem();
    }
    return listing;
}

}  // namespace docpipe::mail
