// docpipe SDK — the Document that flows through a pipeline.
//
// Contract:
// - Ownership: the graph passes documents as `DocumentPtr` (shared_ptr<const Document>).
//   A document handed to a component is immutable; a transform that changes something
//   copies it (`auto out = std::make_shared<Document>(*in)`) and edits the copy. Copies
//   are cheap: raw part bytes and page pixels are shared, immutable buffers.
// - Threading: a const Document may be read from any number of threads at once.
// - Identity: `id` is derived from content (see `content_id`), so a redelivered email or
//   file maps to the same id; a child (an attachment of an email) records `parent_id`.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace docpipe {

using Bytes = std::vector<std::uint8_t>;
using SharedBytes = std::shared_ptr<const Bytes>;

// A raw input part: an email, an attachment, a file from a drop folder.
struct Part {
    std::string name;        // file name as received (sanitised by whoever creates it)
    std::string media_type;  // e.g. "image/jpeg", "application/pdf", "message/rfc822"
    SharedBytes bytes;       // never null once a part is built; shared by all copies
};

struct Box {
    int x = 0, y = 0, width = 0, height = 0;
};

struct OcrWord {
    std::string text;
    Box box;
    float confidence = 0;  // 0..100, as Tesseract reports it
    int line = -1;         // index into OcrResult::lines
};

struct OcrLine {
    std::string text;
    Box box;
    float confidence = 0;
};

struct OcrResult {
    std::string engine;  // e.g. "tesseract 5.3.0 eng+msa psm6"
    std::string text;
    std::vector<OcrLine> lines;
    std::vector<OcrWord> words;
    float mean_confidence = 0;
};

// An 8-bit raster: 1 channel (gray) or 3 (RGB), rows packed without padding.
struct Image {
    int width = 0, height = 0, channels = 0;
    int dpi = 0;  // 0 = unknown
    std::shared_ptr<const std::vector<std::uint8_t>> pixels;
};

struct Page {
    int index = 0;                  // 0-based page number within its part
    Image image;                    // may be empty when the page came with a text layer
    std::string text_layer;         // text taken from a born-digital PDF, if any
    std::optional<OcrResult> ocr;   // filled by an `ocr` component
};

// A component's own note about what it did to a document and why (the OCR layout it kept,
// the skew preprocessing corrected, why a receipt is read again): add one when a reviewer or
// a debugger would want to know. Kept small: it travels with the document. The runtime does
// not add entries here; its per-node timeline (node, component, start, duration, attempt,
// outcome) is kept on the job record (`trace` in the jobs API), one entry per node call.
struct TraceEntry {
    std::string node;
    std::string event;   // "processed", "retry", "failed", ...
    double millis = 0;   // time spent in the node for this event
    std::string detail;  // error text for failures; never personal data
};

// The trace event of a page that was decoded although its file is damaged (a JPEG cut short
// or with corrupt data, most of the page still there); `detail` names the file, the page and
// what the decoder found. What is read from such a page may be incomplete: a component
// that acts on its content unchecked (transform.claims) sends the document to a person.
inline constexpr std::string_view kDamagedPageEvent = "damaged page";

// The trace event of a page whose image has too few pixels for a receipt's print to be read
// (a thumbnail or a chat app's preview sent in place of the photo); `detail` names the file,
// the page and its size. Read like a damaged page: what is read needs a person's check.
inline constexpr std::string_view kSmallPageEvent = "small page";

class Document {
public:
    std::string id;
    std::string parent_id;                         // empty for a source document
    std::map<std::string, std::string> attributes;  // sender, subject, received_at, source...
    std::vector<Part> parts;
    std::vector<Page> pages;
    nlohmann::json fields = nlohmann::json::object();  // structured results, per-field confidence
    std::vector<TraceEntry> trace;

    // Hex SHA-256 prefix (24 hex digits, 96 bits) of the given bytes. Stable across runs
    // and machines, so redelivery of the same content yields the same id.
    static std::string content_id(const std::uint8_t* data, std::size_t size);
    static std::string content_id(std::string_view data);

    // A new document whose id is derived from this one's id and `discriminator` (e.g. the
    // attachment index), with parent_id set and attributes copied.
    Document make_child(std::string_view discriminator) const;

    // Convenience for sources: one part read from memory.
    static Document from_bytes(std::string name, std::string media_type, Bytes bytes);

    // JSON view for sinks, logs and the dead-letter store. Raw bytes are left out unless
    // `include_bytes` (then base64); page pixels are always left out.
    nlohmann::json to_json(bool include_bytes = false) const;
    // Inverse of to_json(true); throws std::invalid_argument with the offending key.
    static Document from_json(const nlohmann::json& j);
};

using DocumentPtr = std::shared_ptr<const Document>;

// JSON as text, for the state store, logs, HTTP bodies and error messages. A string that is
// not valid UTF-8 (a file name in Latin-1) has each bad byte written as U+FFFD instead of
// throwing, which nlohmann's plain dump() does; valid UTF-8 is written byte for byte, so an
// id or idempotency key hashed from the text is the same either way. `indent` < 0: one line.
// Use it in place of dump(): a document's strings come from outside and are not checked.
std::string json_text(const nlohmann::json& value, int indent = -1);

// The top-level members whose values differ between two JSON objects, for a person to read:
// "total_amount: 12.5 delivered, 13 now; ..." with `before_label` "delivered" and
// `after_label` "now". A string is quoted, a missing or null member reads "(none)". "" when
// they agree (numbers compare by value: 13 equals 13.0).
std::string json_differences(const nlohmann::json& before, const nlohmann::json& after, std::string_view before_label,
                             std::string_view after_label);

// Guess a media type from a file name's extension ("application/octet-stream" if unknown).
std::string media_type_for(std::string_view filename);

}  // namespace docpipe
