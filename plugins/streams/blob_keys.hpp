// Key and field names shared by sink.redis_stream and source.redis_stream: the two must
// agree on them across versions, so they live in one place.
#pragma once

#include <string>
#include <string_view>

namespace docpipe::streams {

// Stream entry fields. `doc` is the wire-format payload; the others are for operators
// (XRANGE shows them) and for releasing blobs of an entry whose payload cannot be decoded.
inline constexpr const char* kFieldVersion = "v";
inline constexpr const char* kFieldDocId = "doc_id";
inline constexpr const char* kFieldJobId = "job_id";
inline constexpr const char* kFieldBlobs = "blobs";  // comma-separated SHA-256 hex
inline constexpr const char* kFieldPayload = "doc";

// A content-addressed blob and its reference count ("<blob key>:refs").
inline std::string blob_key(std::string_view sha256) { return "docpipe:blob:" + std::string(sha256); }

// The idempotency key of one append: same stream, same document id, same content.
inline std::string dedup_key(std::string_view stream, std::string_view doc_id, std::string_view content_hash) {
    return "docpipe:stream-sent:" + std::string(stream) + ":" + std::string(doc_id) + ":" + std::string(content_hash.substr(0, 32));
}

}  // namespace docpipe::streams
