// HEIC and AVIF photos (the HEIF container) read with libheif. An iPhone saves its photos as
// HEIC, and a claimant who mails the photo as taken sends that file: without this it was
// "not a readable image" and went to the dead letters.
//
// Contract: one HeifFile per part, used by one thread at a time (several files at once in
// different threads are fine: no shared state). It borrows the bytes, which must outlive it.
// The file is parsed once, when it is made; its primary image is decoded by decode(). libheif
// reports through return values, and its message goes into the BadInput. libheif's own tile
// threads are off (the pipeline already decodes documents in parallel); its HEVC decoder,
// libde265, still runs one worker thread while it decodes a tile. One exception to "nothing
// on stderr": libde265 prints a line for some corrupt HEVC headers ("SPS error: CB
// alignment") with fprintf, past its own logging switch; the part still fails with
// libheif's reason. (AV1 goes through libaom, which prints nothing; dav1d would.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "docpipe/document.hpp"

namespace docpipe::imaging {

// Whether the bytes start with an ISO file-type box naming a HEIF brand (heic, mif1, avif,
// and their sequence and variant brands, as the main or a compatible brand).
bool is_heif(const std::uint8_t* data, std::size_t size);

class HeifFile {
public:
    // Parses the file and finds its primary image. Throws BadInput naming the file and
    // libheif's reason, or saying the image has no width or height.
    HeifFile(const std::string& name, const std::uint8_t* data, std::size_t size);
    ~HeifFile();
    HeifFile(const HeifFile&) = delete;
    HeifFile& operator=(const HeifFile&) = delete;

    // The primary image's size as it will come out: after the rotation, mirroring and crop
    // the file asks for. decode() never gives more.
    std::int64_t width() const;
    std::int64_t height() const;
    // What libheif may hold while it decodes: the largest picture it lets the file code (one
    // side limit for both sides), in YCbCr and in RGB.
    std::size_t decoder_bytes() const;

    // The primary image, upright (libheif applies the file's own rotation and mirroring; the
    // EXIF orientation inside a HEIC is not applied again), as RGB, alpha laid over white. A
    // burst or a live photo's other images are not read: the primary one is the photo shown.
    // A coded picture bigger than the file's declared size is refused before it is decoded.
    Image decode();

private:
    struct Parsed;
    std::string name_;
    std::unique_ptr<Parsed> parsed_;
};

}  // namespace docpipe::imaging
