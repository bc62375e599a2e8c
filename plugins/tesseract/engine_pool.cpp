#include "engine_pool.hpp"

#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <fmt/core.h>

namespace docpipe::tesseract_ocr {

namespace fs = std::filesystem;

EnginePool::EnginePool(std::string tessdata_dir, std::string languages, int psm)
    : tessdata_(std::move(tessdata_dir)), languages_(std::move(languages)), psm_(psm) {
    // Say which language is missing and where we looked, before Tesseract's own message.
    std::size_t start = 0;
    while (start <= languages_.size()) {
        std::size_t end = languages_.find('+', start);
        if (end == std::string::npos) end = languages_.size();
        const std::string lang = languages_.substr(start, end - start);
        if (!lang.empty() && !fs::exists(fs::path(tessdata_) / (lang + ".traineddata")))
            throw std::runtime_error(fmt::format("tesseract: traineddata for language '{}' not found in {} (install "
                                                 "tesseract-ocr-{} or set tessdata_dir)", lang, tessdata_, lang));
        start = end + 1;
    }
    release(take());  // one engine now, so a broken setup fails at start-up
}

EnginePool::~EnginePool() {
    for (auto* api : idle_) {
        api->End();
        delete api;
    }
}

EnginePool::Lease EnginePool::acquire() { return Lease(*this, take()); }

int EnginePool::created() const {
    std::lock_guard lock(mutex_);
    return created_;
}

std::string EnginePool::default_tessdata() {
    if (const char* env = std::getenv("TESSDATA_PREFIX")) return env;
    return "/usr/share/tesseract-ocr/5/tessdata";
}

tesseract::TessBaseAPI* EnginePool::take() {
    {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            auto* api = idle_.back();
            idle_.pop_back();
            return api;
        }
    }
    auto api = std::make_unique<tesseract::TessBaseAPI>();
    if (api->Init(tessdata_.c_str(), languages_.c_str(), tesseract::OEM_LSTM_ONLY) != 0)
        throw std::runtime_error(fmt::format("tesseract init failed for languages '{}' with tessdata {}", languages_, tessdata_));
    api->SetPageSegMode(static_cast<tesseract::PageSegMode>(psm_));
    // Tesseract prints its own diagnostics ("Detected 145 diacritics", "Image too small to
    // scale!!") straight to stderr, one per page, interleaved with docpipe's log and naming
    // no document. They say nothing an operator can act on, so they go nowhere; what
    // matters (empty pages, low confidence) is in the OCR result and our log.
    api->SetVariable("debug_file", "/dev/null");
    std::lock_guard lock(mutex_);
    ++created_;
    return api.release();
}

void EnginePool::release(tesseract::TessBaseAPI* api) {
    std::lock_guard lock(mutex_);
    idle_.push_back(api);
}

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
