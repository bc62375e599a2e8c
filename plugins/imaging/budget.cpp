#include "budget.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

#include "docpipe/component.hpp"

namespace docpipe::imaging {

double aspect_ratio(std::int64_t width, std::int64_t height) {
    const double lo = static_cast<double>(std::max<std::int64_t>(1, std::min(width, height)));
    return static_cast<double>(std::max(width, height)) / lo;
}

std::string ratio_text(double ratio) {
    // Whole numbers stay whole ("1:25", "1:1500"); a receipt's 7.5 keeps its tenth.
    if (ratio >= 100 || std::abs(ratio - std::round(ratio)) < 0.05) return fmt::format("1:{:.0f}", ratio);
    return fmt::format("1:{:.1f}", ratio);
}

std::string bytes_text(std::size_t bytes) {
    const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
    if (mib >= 1024) return fmt::format("{:.1f} GiB", mib / 1024.0);
    return fmt::format("{:.1f} MiB", mib);
}

void check_page(std::string_view what, std::int64_t width, std::int64_t height, const PageLimits& limits,
                std::string_view consequence) {
    const double ratio = aspect_ratio(width, height);
    if (limits.max_aspect_ratio > 0 && ratio > limits.max_aspect_ratio)
        throw BadInput(fmt::format("{} is {}x{} pixels, an aspect ratio of {}, beyond the limit of {} (max_aspect_ratio); "
                                   "not a receipt page{}",
                                   what, width, height, ratio_text(ratio), ratio_text(limits.max_aspect_ratio), consequence));
    const double mp = static_cast<double>(width) * static_cast<double>(height) / 1e6;
    if (limits.max_megapixels > 0 && mp > limits.max_megapixels)
        throw BadInput(fmt::format("{} is {}x{} pixels ({:.1f} megapixels), above the limit of {} megapixels (max_megapixels){}", what,
                                   width, height, mp, limits.max_megapixels, consequence));
}

// ---- ImageMemory ---------------------------------------------------------------------------

ImageMemory::ImageMemory(std::size_t capacity_bytes) : default_capacity_(capacity_bytes) {}

ImageMemory& ImageMemory::process() {
    static ImageMemory budget;
    return budget;
}

std::size_t ImageMemory::capacity_locked() const { return settings_.empty() ? default_capacity_ : *settings_.begin(); }

std::size_t ImageMemory::capacity() const {
    std::lock_guard lock(mutex_);
    return capacity_locked();
}

std::size_t ImageMemory::in_use() const {
    std::lock_guard lock(mutex_);
    return in_use_;
}

ImageMemory::Lease ImageMemory::reserve(std::size_t bytes, std::chrono::milliseconds max_wait, std::string_view what) {
    std::unique_lock lock(mutex_);
    if (bytes > capacity_locked())
        throw BadInput(fmt::format("{}: needs about {} of image memory, more than the whole process budget of {} "
                                   "(process_memory_mb); raise it, or lower the page limits or the PDF dpi",
                                   what, bytes_text(bytes), bytes_text(capacity_locked())));
    const std::uint64_t ticket = next_ticket_++;
    queue_.push_back(ticket);
    const auto my_turn = [&] { return queue_.front() == ticket && in_use_ + bytes <= capacity_locked(); };
    const bool granted = changed_.wait_for(lock, max_wait, my_turn);
    queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
    if (!granted) {
        const std::size_t used = in_use_, capacity = capacity_locked();
        lock.unlock();
        changed_.notify_all();  // the next in line may fit where this one did not
        throw RetryLater(fmt::format("{}: waited {} ms for {} of image memory; {} of the process budget of {} (process_memory_mb) "
                                     "is held by other documents; will try again",
                                     what, max_wait.count(), bytes_text(bytes), bytes_text(used), bytes_text(capacity)),
                         std::chrono::seconds(5));
    }
    in_use_ += bytes;
    lock.unlock();
    changed_.notify_all();  // the next in line may fit too
    return Lease(this, bytes);
}

void ImageMemory::give_back(std::size_t bytes) {
    {
        std::lock_guard lock(mutex_);
        in_use_ -= std::min(bytes, in_use_);
    }
    changed_.notify_all();
}

ImageMemory::Setting ImageMemory::configure(std::size_t capacity_bytes) {
    {
        std::lock_guard lock(mutex_);
        settings_.insert(capacity_bytes);
    }
    changed_.notify_all();
    return Setting(this, capacity_bytes);
}

void ImageMemory::drop_setting(std::size_t bytes) {
    {
        std::lock_guard lock(mutex_);
        if (auto it = settings_.find(bytes); it != settings_.end()) settings_.erase(it);
    }
    changed_.notify_all();  // a larger budget may let a waiter in
}

ImageMemory::Lease::Lease(Lease&& other) noexcept : owner_(other.owner_), bytes_(other.bytes_) {
    other.owner_ = nullptr;
    other.bytes_ = 0;
}

ImageMemory::Lease& ImageMemory::Lease::operator=(Lease&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = other.owner_;
        bytes_ = other.bytes_;
        other.owner_ = nullptr;
        other.bytes_ = 0;
    }
    return *this;
}

ImageMemory::Lease::~Lease() { release(); }

void ImageMemory::Lease::release() {
    if (owner_) owner_->give_back(bytes_);
    owner_ = nullptr;
    bytes_ = 0;
}

ImageMemory::Setting::Setting(Setting&& other) noexcept : owner_(other.owner_), bytes_(other.bytes_) { other.owner_ = nullptr; }

ImageMemory::Setting& ImageMemory::Setting::operator=(Setting&& other) noexcept {
    if (this != &other) {
        if (owner_) owner_->drop_setting(bytes_);
        owner_ = other.owner_;
        bytes_ = other.bytes_;
        other.owner_ = nullptr;
    }
    return *this;
}

ImageMemory::Setting::~Setting() {
    if (owner_) owner_->drop_setting(bytes_);
}

void DocumentBudget::add_fields(ConfigSpec& spec, std::string document_limit) {
    spec.add(Field::number("max_document_megapixels").default_value(300).min(0.01).describe(std::move(document_limit)));
    spec.add(Field::integer("process_memory_mb").default_value(static_cast<std::int64_t>(ImageMemory::kDefaultBytes >> 20)).min(16)
                 .describe("Image memory all transform.pdf_pages and transform.preprocess calls of the process may hold at once "
                           "(one budget; when nodes set different values the smallest applies)"));
    spec.add(Field::duration("memory_wait").default_value("60s").min(0)
                 .describe("How long a document waits for that memory while others hold it, before it is retried later"));
}

DocumentBudget::DocumentBudget(const Config& config)
    : max_megapixels_(config.get_number("max_document_megapixels")),
      memory_wait_(config.get_duration("memory_wait")),
      setting_(ImageMemory::process().configure(static_cast<std::size_t>(config.get_int("process_memory_mb")) << 20)) {}

ImageMemory::Lease DocumentBudget::admit(std::string_view name, std::string_view pages_would_be, double megapixels, std::size_t bytes,
                                         std::string_view consequence) const {
    if (megapixels > max_megapixels_)
        throw BadInput(fmt::format("{}: its {} {:.1f} megapixels together, above the limit of {} megapixels per document "
                                   "(max_document_megapixels){}",
                                   name, pages_would_be, megapixels, max_megapixels_, consequence));
    return ImageMemory::process().reserve(bytes, memory_wait_, name);
}

}  // namespace docpipe::imaging
