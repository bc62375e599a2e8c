// The streams package's wire format: one Document (parts, pages, fields, trace) plus the
// identity the runtime's delivery guarantees need, as bytes that can sit in a Redis stream
// entry and cross machines.
//
// Layout, version 1: the 4 bytes "DPDS", a big-endian uint16 version, then one CBOR map
// (nlohmann::json's CBOR, so byte buffers are CBOR byte strings, not base64). Binary-safe;
// field names are spelled out so a later version can add keys an old reader ignores. A
// reader refuses a version it does not know (UnsupportedWireVersion) instead of guessing:
// the producer is newer than the consumer, and the operator must upgrade the consumer.
//
// What travels, and why:
// - `id`, `parent_id`: the document's content-derived id is what sink ledgers (node, doc
//   id) and transform.dedup key on, so a redelivered entry is recognised downstream;
// - `job_id`: the producing runtime's job (its source document), kept as the attribute
//   `upstream_job_id` on the receiving side, because the receiving runtime starts a job of
//   its own (and overwrites `job_id`), keyed by the document id, or by `<id>@<source node>`
//   when the upstream job already has the document's id;
// - attributes, parts (name, media type, bytes), pages (index, raster with dpi, text layer,
//   OCR words/lines with boxes and confidences), `fields` as JSON (per-field confidence and
//   provenance are whatever the SDK's fields JSON holds), and the trace.
//
// Large buffers (a part's bytes, a page's pixels) above `inline_limit` are not put inline:
// encode() returns them as content-addressed blobs (SHA-256) for the caller to store, and
// the payload names them; decode() asks a BlobReader for them.
//
// Threading: free functions on values; safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/document.hpp"

namespace docpipe::streams {

inline constexpr std::uint16_t kWireVersion = 1;

// The payload can never be decoded by this build (corrupt, truncated, unknown version, a
// referenced blob gone): retrying cannot help; the entry belongs in the dead-letter store.
class WireFormatError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class UnsupportedWireVersion : public WireFormatError {
public:
    UnsupportedWireVersion(std::uint16_t found);
    std::uint16_t found;
};

struct BlobRef {
    std::string sha256;  // 64 lower-case hex digits of the blob's bytes
    std::size_t size = 0;
};

struct EncodeOptions {
    std::size_t inline_limit = 64 * 1024;  // buffers larger than this travel as blobs
    std::string job_id;                    // the producing runtime's job id
    std::string producer;                  // the node that wrote the entry (for operators)
    std::int64_t written_ms = 0;
};

struct Encoded {
    std::string payload;
    // Distinct blobs the payload refers to, each with its bytes, to store before the entry.
    std::vector<std::pair<BlobRef, SharedBytes>> blobs;
    // SHA-256 over what the document *is* (id, parts, pages, fields), not over attributes or
    // trace that the runtime rewrites on a redelivery: the key of an idempotent write.
    std::string content_hash;
};

Encoded encode(const Document& doc, const EncodeOptions& options);

struct Decoded {
    Document doc;
    std::string job_id;
    std::string producer;
    std::int64_t written_ms = 0;
    std::uint16_t version = 0;
};

// Returns the blob's bytes, or nullptr when the store no longer has it. May throw for an
// I/O failure (that propagates unchanged: it is not the payload's fault).
using BlobReader = std::function<SharedBytes(const BlobRef&)>;

// Throws WireFormatError (or UnsupportedWireVersion) for a payload this build cannot use.
Decoded decode(std::string_view payload, const BlobReader& read_blob);

// The version in a payload's header; throws WireFormatError when there is no valid header.
std::uint16_t peek_version(std::string_view payload);

std::string sha256_hex(const std::uint8_t* data, std::size_t size);

}  // namespace docpipe::streams
