// A pool of Tesseract engines for one component, and the reading of one recognised image
// into docpipe's OcrResult. Shared by ocr.tesseract (whole pages) and ocr.tesseract_lines
// (single lines cropped from a page).
//
// Ownership: the pool owns every engine it created; acquire() lends one (Lease returns it
// when it goes out of scope). Threading: acquire/release are thread-safe; a leased engine is
// used by one thread at a time. Lifetime: leases must end before the pool is destroyed (the
// component outlives its process() calls, so they do).
//
// The runtime sets OMP_THREAD_LIMIT=1 before any plugin loads: Debian's Tesseract is built
// with OpenMP, and one engine per core with OpenMP threads on top oversubscribes the CPU.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "docpipe/document.hpp"

namespace tesseract {
class TessBaseAPI;
}

namespace docpipe::tesseract_ocr {

class EnginePool {
public:
    // Throws std::runtime_error naming a missing language and the folder looked in, so a
    // broken setup fails at start-up with something to act on; builds one engine at once.
    EnginePool(std::string tessdata_dir, std::string languages, int psm);
    ~EnginePool();
    EnginePool(const EnginePool&) = delete;
    EnginePool& operator=(const EnginePool&) = delete;

    class Lease {
    public:
        Lease(EnginePool& pool, tesseract::TessBaseAPI* api) : pool_(pool), api_(api) {}
        ~Lease() { pool_.release(api_); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        tesseract::TessBaseAPI* operator->() const { return api_; }
        tesseract::TessBaseAPI* get() const { return api_; }

    private:
        EnginePool& pool_;
        tesseract::TessBaseAPI* api_;
    };
    Lease acquire();

    int created() const;
    const std::string& languages() const { return languages_; }
    int psm() const { return psm_; }

    // Tesseract's tessdata folder: $TESSDATA_PREFIX, else Debian's.
    static std::string default_tessdata();

private:
    tesseract::TessBaseAPI* take();
    void release(tesseract::TessBaseAPI* api);

    std::string tessdata_;
    std::string languages_;
    int psm_;
    mutable std::mutex mutex_;                  // guards idle_ and created_
    std::vector<tesseract::TessBaseAPI*> idle_;  // owned; engines not lent out
    int created_ = 0;
};

// Lines and words (text, box, confidence) of what `api` last recognised, in reading order.
// Boxes are in the recognised image's pixels.
OcrResult read_result(tesseract::TessBaseAPI& api);

}  // namespace docpipe::tesseract_ocr
