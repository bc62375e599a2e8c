// A pool of Tesseract engines for one component, and the reading of one recognised image
// into docpipe's OcrResult. Shared by ocr.tesseract (whole pages) and ocr.tesseract_lines
// (single lines cropped from a page).
//
// Engines are shared across components: every pool in the process with the same tessdata
// folder and languages draws on one stock of engines, and sets its own page segmentation
// mode on each engine it lends. Why: an `eng+msa` engine takes about 0.27 s of CPU and tens
// of MB to load, and the claims pipelines have three OCR nodes (first reading, psm 4
// reread, thickened reread) whose engines would otherwise each be loaded apart, at start-up
// and again when each node first runs two pages at once. A pool's `concurrency` still caps
// what that node borrows; the stock holds as many engines as were ever borrowed at once.
//
// Ownership: the stock owns every engine it created and ends them when the last pool that
// uses it is destroyed; acquire() lends one (Lease returns it when it goes out of scope).
// Threading: acquire/release are thread-safe; a leased engine is used by one thread at a
// time. Lifetime: leases must end before their pool is destroyed (the component outlives
// its process() calls, so they do).
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
    // broken setup fails at start-up with something to act on. The first pool for these
    // tessdata and languages builds one engine at once; later ones find it in the stock.
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

    // Engines loaded for this pool's tessdata and languages, by every pool that shares them.
    int created() const;
    // Pools (so nodes) that share those engines, this one included.
    int sharing() const;
    const std::string& languages() const { return languages_; }
    int psm() const { return psm_; }

    // Tesseract's tessdata folder: $TESSDATA_PREFIX, else Debian's.
    static std::string default_tessdata();

private:
    // The stock of engines for one tessdata folder and language set (engine_pool.cpp).
    struct Stock;
    // The live stock for these, or a new one (`is_new`); a stock lives while a pool holds it.
    static std::shared_ptr<Stock> shared_stock(const std::string& tessdata, const std::string& languages, bool* is_new);

    tesseract::TessBaseAPI* take();
    void release(tesseract::TessBaseAPI* api);

    std::string languages_;
    int psm_;
    std::shared_ptr<Stock> stock_;  // shared with every pool on the same tessdata and languages
};

// Lines and words (text, box, confidence) of what `api` last recognised, in reading order.
// Boxes are in the recognised image's pixels.
OcrResult read_result(tesseract::TessBaseAPI& api);

}  // namespace docpipe::tesseract_ocr
