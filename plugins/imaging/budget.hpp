// How many pixels the imaging plugin may make, and how much image memory its steps may hold
// at once.
//
// Why: a page's pixel count has little to do with its file's size. An 84-byte PNG of 1x1500
// white pixels passes a 100-megapixel check after decoding, and then clean-up scales it up
// to its minimum width of 1000 px: 1000x1500000 pixels, 1.5 GB per copy, 44 s, and Tesseract
// gives up on it. So every step that makes pixels works out the size it WILL produce
// (after rescaling, at the PDF's rendering resolution, from an image's header) and checks
// it before it allocates anything:
//   - per page: megapixels and aspect ratio (check_page) — the page fails as bad input;
//   - per document: the pixels of all its pages together — the document fails alone as bad
//     input, the others go on;
//   - per process: the bytes every thread is working on at once (ImageMemory) — a document
//     that does not fit now waits (bounded), then is retried (RetryLater); only one that
//     could never fit, even alone, fails.
//
// Thread-safe: check_page is pure; ImageMemory is shared by every node of the process and
// may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "docpipe/config_spec.hpp"

namespace docpipe::imaging {

struct PageLimits {
    double max_megapixels = 0;    // 0: no limit
    double max_aspect_ratio = 0;  // long side / short side; 0: no limit
};

// Long side over short side (1 for a square; a 1x1500 strip gives 1500).
double aspect_ratio(std::int64_t width, std::int64_t height);
// "1:7.5", "1:1500": how an aspect ratio is written in messages.
std::string ratio_text(double ratio);

// Throws BadInput when a page of width x height pixels breaks `limits`. The message is
// "<what> is WxH pixels (...), above/beyond <the limit> (<config field>)<consequence>",
// e.g. "strip.png: page 1 is 1x1500 pixels, an aspect ratio of 1:1500, beyond the limit of
// 1:25 (max_aspect_ratio); not a receipt page; not decoded". `consequence` is appended as
// is ("; not decoded"). The aspect ratio is checked first: it is the clearer reason.
void check_page(std::string_view what, std::int64_t width, std::int64_t height, const PageLimits& limits,
                std::string_view consequence);

// "1.5 MiB", "2.0 GiB".
std::string bytes_text(std::size_t bytes);

// The image memory budget of the process: bytes of pixels (and the buffers that make them)
// being worked on at once by every transform.pdf_pages and transform.preprocess call, on
// any thread. A call reserves its estimate before it allocates and gives it back when it
// returns; what it emitted is then the next step's to account for.
//
// Waiting is first come, first served, so a big document is not starved by small ones.
class ImageMemory {
public:
    static constexpr std::size_t kDefaultBytes = std::size_t{3072} << 20;  // 3 GiB

    explicit ImageMemory(std::size_t capacity_bytes = kDefaultBytes);
    ImageMemory(const ImageMemory&) = delete;
    ImageMemory& operator=(const ImageMemory&) = delete;

    // The one budget every node of this process shares (the plugin is loaded once).
    static ImageMemory& process();

    // Bytes held until the lease is destroyed (or moved from).
    class Lease {
    public:
        Lease() = default;
        Lease(Lease&& other) noexcept;
        Lease& operator=(Lease&& other) noexcept;
        ~Lease();
        std::size_t bytes() const { return bytes_; }

    private:
        friend class ImageMemory;
        Lease(ImageMemory* owner, std::size_t bytes) : owner_(owner), bytes_(bytes) {}
        void release();
        ImageMemory* owner_ = nullptr;
        std::size_t bytes_ = 0;
    };

    // Reserves `bytes` for `what` (a document's name, for the messages), waiting up to
    // `max_wait` for other calls to give enough back.
    // Throws BadInput when `bytes` is more than the whole budget (it could never run), and
    // RetryLater when the wait ran out (the document is tried again later, when the
    // documents now being worked on are done).
    Lease reserve(std::size_t bytes, std::chrono::milliseconds max_wait, std::string_view what);

    // A node's configured budget (process_memory_mb). Nodes share one budget, so the
    // smallest setting among the live ones applies; without any, the constructor's.
    class Setting {
    public:
        Setting() = default;
        Setting(Setting&& other) noexcept;
        Setting& operator=(Setting&& other) noexcept;
        ~Setting();

    private:
        friend class ImageMemory;
        Setting(ImageMemory* owner, std::size_t bytes) : owner_(owner), bytes_(bytes) {}
        ImageMemory* owner_ = nullptr;
        std::size_t bytes_ = 0;
    };
    Setting configure(std::size_t capacity_bytes);

    std::size_t capacity() const;
    std::size_t in_use() const;

private:
    std::size_t capacity_locked() const;
    void give_back(std::size_t bytes);
    void drop_setting(std::size_t bytes);

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    const std::size_t default_capacity_;
    std::multiset<std::size_t> settings_;
    std::size_t in_use_ = 0;
    std::deque<std::uint64_t> queue_;  // waiting reservations, first come first served
    std::uint64_t next_ticket_ = 0;
};

// The per-document part of the budget, the same for every step that makes pixels
// (transform.pdf_pages, transform.preprocess): the config fields max_document_megapixels,
// process_memory_mb and memory_wait, the document limit, and the reservation in the
// process's ImageMemory. Built once per node; admit() is thread-safe.
class DocumentBudget {
public:
    // Adds the three fields to a component's spec; `document_limit` describes what
    // max_document_megapixels counts for that component.
    static void add_fields(ConfigSpec& spec, std::string document_limit);
    explicit DocumentBudget(const Config& config);

    // A document whose pages come to `megapixels` and need `bytes` of image memory: throws
    // BadInput ("<name>: its <pages_would_be> N megapixels together, above the limit ...
    // (max_document_megapixels)<consequence>") over the document limit, else waits for the
    // memory like ImageMemory::reserve.
    ImageMemory::Lease admit(std::string_view name, std::string_view pages_would_be, double megapixels, std::size_t bytes,
                             std::string_view consequence) const;

private:
    double max_megapixels_ = 0;
    std::chrono::milliseconds memory_wait_{0};
    ImageMemory::Setting setting_;
};

}  // namespace docpipe::imaging
