#include "engine_pool.hpp"

#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <utility>
#include <stdexcept>

#include <fmt/core.h>

namespace docpipe::tesseract_ocr {

namespace fs = std::filesystem;

struct EnginePool::Stock {
    Stock(std::string tessdata_dir, std::string langs) : tessdata(std::move(tessdata_dir)), languages(std::move(langs)) {}
    ~Stock() {
        for (auto* api : idle) {
            api->End();
            delete api;
        }
    }
    Stock(const Stock&) = delete;
    Stock& operator=(const Stock&) = delete;

    // An idle engine, or a newly loaded one; the caller sets its page segmentation mode.
    tesseract::TessBaseAPI* take() {
        {
            std::lock_guard lock(mutex);
            if (!idle.empty()) {
                auto* api = idle.back();
                idle.pop_back();
                return api;
            }
        }
        // Loaded outside the lock: another thread may take an idle engine meanwhile.
        auto api = std::make_unique<tesseract::TessBaseAPI>();
        if (api->Init(tessdata.c_str(), languages.c_str(), tesseract::OEM_LSTM_ONLY) != 0)
            throw std::runtime_error(fmt::format("tesseract init failed for languages '{}' with tessdata {}", languages, tessdata));
        // Tesseract prints its own diagnostics ("Detected 145 diacritics", "Image too small to
        // scale!!") straight to stderr, one per page, interleaved with docpipe's log and naming
        // no document. They say nothing an operator can act on, so they go nowhere; what
        // matters (empty pages, low confidence) is in the OCR result and our log.
        api->SetVariable("debug_file", "/dev/null");
        std::lock_guard lock(mutex);
        ++created;
        return api.release();
    }

    void release(tesseract::TessBaseAPI* api) {
        std::lock_guard lock(mutex);
        idle.push_back(api);
    }

    const std::string tessdata, languages;
    mutable std::mutex mutex;                   // guards idle, created and pools
    std::vector<tesseract::TessBaseAPI*> idle;  // owned; engines not lent out
    int created = 0;
    int pools = 0;  // EnginePools holding this stock
};

// The registry finds a live stock for the next pool; it holds none alive itself.
std::shared_ptr<EnginePool::Stock> EnginePool::shared_stock(const std::string& tessdata, const std::string& languages, bool* is_new) {
    static std::mutex registry_mutex;
    static std::map<std::pair<std::string, std::string>, std::weak_ptr<Stock>> registry;
    std::lock_guard lock(registry_mutex);
    auto& slot = registry[{tessdata, languages}];
    if (auto stock = slot.lock()) {
        *is_new = false;
        return stock;
    }
    auto stock = std::make_shared<Stock>(tessdata, languages);
    slot = stock;
    *is_new = true;
    return stock;
}

EnginePool::EnginePool(std::string tessdata_dir, std::string languages, int psm) : languages_(std::move(languages)), psm_(psm) {
    // Say which language is missing and where we looked, before Tesseract's own message.
    std::size_t start = 0;
    while (start <= languages_.size()) {
        std::size_t end = languages_.find('+', start);
        if (end == std::string::npos) end = languages_.size();
        const std::string lang = languages_.substr(start, end - start);
        if (!lang.empty() && !fs::exists(fs::path(tessdata_dir) / (lang + ".traineddata")))
            throw std::runtime_error(fmt::format("tesseract: traineddata for language '{}' not found in {} (install "
                                                 "tesseract-ocr-{} or set tessdata_dir)", lang, tessdata_dir, lang));
        start = end + 1;
    }
    bool is_new = false;
    stock_ = shared_stock(tessdata_dir, languages_, &is_new);
    // One engine now, so a broken setup fails at start-up; a stock that another pool made
    // has loaded one already (a stock whose first load failed is dropped with that pool).
    if (is_new || created() == 0) stock_->release(stock_->take());
    std::lock_guard lock(stock_->mutex);
    ++stock_->pools;
}

EnginePool::~EnginePool() {
    std::lock_guard lock(stock_->mutex);
    --stock_->pools;
}

EnginePool::Lease EnginePool::acquire() { return Lease(*this, take()); }

int EnginePool::created() const {
    std::lock_guard lock(stock_->mutex);
    return stock_->created;
}

int EnginePool::sharing() const {
    std::lock_guard lock(stock_->mutex);
    return stock_->pools;
}

std::string EnginePool::default_tessdata() {
    if (const char* env = std::getenv("TESSDATA_PREFIX")) return env;
    return "/usr/share/tesseract-ocr/5/tessdata";
}

tesseract::TessBaseAPI* EnginePool::take() {
    auto* api = stock_->take();
    // The engine may last have read for another node with another layout mode.
    api->SetPageSegMode(static_cast<tesseract::PageSegMode>(psm_));
    return api;
}

void EnginePool::release(tesseract::TessBaseAPI* api) { stock_->release(api); }

OcrResult read_result(tesseract::TessBaseAPI& api) {
    OcrResult result;
    std::unique_ptr<char[]> text(api.GetUTF8Text());
    result.text = text ? text.get() : "";
    result.mean_confidence = static_cast<float>(api.MeanTextConf());
    std::unique_ptr<tesseract::ResultIterator> it(api.GetIterator());
    // Word by word (a `continue` below moves on to the next word).
    for (bool more = it != nullptr; more; more = it->Next(tesseract::RIL_WORD)) {
        if (it->IsAtBeginningOf(tesseract::RIL_TEXTLINE)) {
            std::unique_ptr<char[]> line(it->GetUTF8Text(tesseract::RIL_TEXTLINE));
            OcrLine l;
            l.text = line ? line.get() : "";
            while (!l.text.empty() && (l.text.back() == '\n' || l.text.back() == ' ')) l.text.pop_back();
            int x1, y1, x2, y2;
            if (it->BoundingBox(tesseract::RIL_TEXTLINE, &x1, &y1, &x2, &y2)) l.box = {x1, y1, x2 - x1, y2 - y1};
            l.confidence = it->Confidence(tesseract::RIL_TEXTLINE);
            result.lines.push_back(std::move(l));
        }
        std::unique_ptr<char[]> word(it->GetUTF8Text(tesseract::RIL_WORD));
        if (!word) continue;
        OcrWord w;
        w.text = word.get();
        int x1, y1, x2, y2;
        if (it->BoundingBox(tesseract::RIL_WORD, &x1, &y1, &x2, &y2)) w.box = {x1, y1, x2 - x1, y2 - y1};
        w.confidence = it->Confidence(tesseract::RIL_WORD);
        w.line = static_cast<int>(result.lines.size()) - 1;
        result.words.push_back(std::move(w));
    }
    // A page with no word read (or only blank ones: a border strip) has no text confidence;
    // Tesseract's mean over such a page is not 0, and a blank page must not look well read.
    if (std::none_of(result.words.begin(), result.words.end(), [](const OcrWord& w) {
            return std::any_of(w.text.begin(), w.text.end(), [](unsigned char c) { return !std::isspace(c); });
        }))
        result.mean_confidence = 0;
    return result;
}

}  // namespace docpipe::tesseract_ocr
