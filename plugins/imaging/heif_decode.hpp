// HEIC and AVIF photos (the HEIF container) read with libheif. An iPhone saves its photos as
// HEIC, and a claimant who mails the photo as taken sends that file: without this it was
// "not a readable image" and went to the dead letters.
//
// Contract: thread-safe, no shared state; each call opens its own libheif context over the
// borrowed bytes, decodes in the calling thread (no libheif worker threads: the pipeline
// already decodes documents in parallel) and frees everything before it returns. libheif
// reports through its return values only; its message goes into the BadInput.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "docpipe/document.hpp"

namespace docpipe::imaging {

// Whether the bytes are a HEIF file (an ISO box file whose brand libheif knows), decodable
// or not: read_heif_size() then says which.
bool is_heif(const std::uint8_t* data, std::size_t size);

// The primary image's size as it will come out, after the rotation, mirroring and crop the
// file asks for. Throws BadInput naming the file and libheif's reason.
struct HeifSize {
    std::int64_t width = 0, height = 0;
};
HeifSize read_heif_size(const std::string& name, const std::uint8_t* data, std::size_t size);

// The primary image, upright (libheif applies the file's own rotation and mirroring; the
// EXIF orientation inside a HEIC is not applied again), as RGB, alpha laid over white. A
// burst or a live photo's other images are not read: the primary one is the photo shown.
Image decode_heif(const std::string& name, const std::uint8_t* data, std::size_t size);

}  // namespace docpipe::imaging
