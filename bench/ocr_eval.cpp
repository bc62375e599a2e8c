// bench/ocr_eval — OCR quality and speed on ../shared/data/sroie-dev (real scanned Malaysian
// receipts): character error rate (CER) of the OCR text against the ground-truth lines
// (whitespace-collapsed, case-insensitive) and seconds per page, for docpipe's path
// (transform.pdf_pages -> ocr.tesseract, one engine, OMP_THREAD_LIMIT=1) at each page
// segmentation mode given, against the baseline `tesseract IMG stdout` (one process per
// image, also limited to one OpenMP thread: per-core numbers).
//
// --recipes adds rows for transform.preprocess recipes before OCR (psm 6); --workers
// measures pages/second with 1, 2, ... OCR workers (threads, one engine each) on the
// shipped recipe.
//
//   bench_ocr_eval [DATA_DIR] [--limit N] [--psm 6,4,3] [--recipes default,sauvola,...]
//                  [--workers 1,2] [--no-baseline]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <atomic>
#include <map>

#include "docpipe/testing.hpp"

using namespace docpipe;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

namespace {

std::string normalise(const std::string& text) {
    std::string out;
    bool space = true;
    for (unsigned char c : text) {
        if (std::isspace(c)) {
            if (!space) out += ' ';
            space = true;
        } else {
            out += static_cast<char>(std::tolower(c));
            space = false;
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

double cer(const std::string& hypothesis, const std::string& reference) {
    const std::string h = normalise(hypothesis), r = normalise(reference);
    std::vector<std::size_t> prev(h.size() + 1), cur(h.size() + 1);
    for (std::size_t j = 0; j <= h.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= r.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= h.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return r.empty() ? 0.0 : static_cast<double>(prev[h.size()]) / static_cast<double>(r.size());
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

struct Stats {
    std::vector<double> cers, seconds;
    void print(const std::string& name) const {
        auto median = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v.empty() ? 0.0 : v[v.size() / 2];
        };
        auto mean = [](const std::vector<double>& v) {
            double s = 0;
            for (double x : v) s += x;
            return v.empty() ? 0.0 : s / static_cast<double>(v.size());
        };
        std::printf("%-34s %6zu %9.3f %9.3f %10.2f %10.2f\n", name.c_str(), cers.size(), median(cers), mean(cers), median(seconds),
                    mean(seconds));
    }
};

}  // namespace

int main(int argc, char** argv) {
    fs::path data = fs::path(DOCPIPE_SOURCE_DIR) / "../shared/data/sroie-dev";
    std::size_t limit = 1000;
    std::vector<int> modes = {6};
    bool baseline = true;
    std::vector<std::string> recipes;
    std::vector<int> workers;
    // Preprocessing recipes (transform.preprocess config), device cpu for per-core numbers.
    const std::map<std::string, std::string> kRecipes = {
        {"default", "{device: cpu}"},
        {"crop", "{device: cpu, crop: true}"},
        {"thicken", "{device: cpu, thicken: true}"},
        {"sauvola", "{device: cpu, binarize: sauvola}"},
        {"otsu", "{device: cpu, binarize: otsu}"},
        {"contrast", "{device: cpu, contrast: true}"},
        {"denoise", "{device: cpu, denoise: true}"},
        {"border", "{device: cpu, border: true}"},
        {"wide", "{device: cpu, min_width: 1600, max_width: 3200}"},
        {"all", "{device: cpu, border: true, denoise: true, contrast: true}"},
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--limit" && i + 1 < argc) limit = std::stoul(argv[++i]);
        else if (a == "--psm" && i + 1 < argc) {
            modes.clear();
            std::stringstream list(argv[++i]);
            for (std::string m; std::getline(list, m, ',');) modes.push_back(std::stoi(m));
        } else if (a == "--recipes" && i + 1 < argc) {
            std::stringstream list(argv[++i]);
            for (std::string r; std::getline(list, r, ',');) recipes.push_back(r);
        } else if (a == "--workers" && i + 1 < argc) {
            std::stringstream list(argv[++i]);
            for (std::string w; std::getline(list, w, ',');) workers.push_back(std::stoi(w));
        } else if (a == "--no-baseline") baseline = false;
        else data = a;
    }
    setenv("OMP_THREAD_LIMIT", "1", 0);
    std::vector<fs::path> images;
    for (const auto& e : fs::directory_iterator(data))
        if (e.path().extension() == ".jpg" && fs::exists(fs::path(e.path()).replace_extension(".lines.txt"))) images.push_back(e.path());
    std::sort(images.begin(), images.end());
    if (images.size() > limit) images.resize(limit);
    if (images.empty()) {
        std::fprintf(stderr, "no images with .lines.txt ground truth in %s\n", data.c_str());
        return 1;
    }
    const fs::path plugins = DOCPIPE_BUILD_PLUGIN_DIR;
    auto decoder = testing::NodeRunner::from_plugin(plugins / "libdocpipe-imaging.so", "transform.pdf_pages", "");
    std::printf("%-34s %6s %9s %9s %10s %10s\n", "recipe", "pages", "CER med", "CER mean", "s/page med", "s/page mean");
    for (int psm : modes) {
        auto ocr = testing::NodeRunner::from_plugin(plugins / "libdocpipe-tesseract.so", "ocr.tesseract",
                                                    "languages: eng\npsm: " + std::to_string(psm));
        Stats stats;
        for (const auto& img : images) {
            const std::string truth = slurp(fs::path(img).replace_extension(".lines.txt"));
            const std::string bytes = slurp(img);
            const auto t0 = Steady::now();
            auto pages = decoder.process(Document::from_bytes(img.filename().string(), "image/jpeg", Bytes(bytes.begin(), bytes.end())));
            auto out = ocr.process(*pages.at(0).doc);
            stats.seconds.push_back(std::chrono::duration<double>(Steady::now() - t0).count());
            stats.cers.push_back(cer(out.at(0).doc->pages.at(0).ocr->text, truth));
        }
        stats.print("docpipe raw, eng, psm " + std::to_string(psm));
    }
    for (const auto& name : recipes) {
        auto it = kRecipes.find(name);
        if (it == kRecipes.end()) {
            std::fprintf(stderr, "unknown recipe '%s'\n", name.c_str());
            return 2;
        }
        auto clean = testing::NodeRunner::from_plugin(plugins / "libdocpipe-imaging.so", "transform.preprocess", it->second);
        auto ocr = testing::NodeRunner::from_plugin(plugins / "libdocpipe-tesseract.so", "ocr.tesseract", "{languages: eng, psm: 6}");
        Stats stats;
        for (const auto& img : images) {
            const std::string truth = slurp(fs::path(img).replace_extension(".lines.txt"));
            const std::string bytes = slurp(img);
            const auto t0 = Steady::now();
            auto pages = decoder.process(Document::from_bytes(img.filename().string(), "image/jpeg", Bytes(bytes.begin(), bytes.end())));
            auto cleaned = clean.process(*pages.at(0).doc);
            auto out = ocr.process(*cleaned.at(0).doc);
            stats.seconds.push_back(std::chrono::duration<double>(Steady::now() - t0).count());
            stats.cers.push_back(cer(out.at(0).doc->pages.at(0).ocr->text, truth));
        }
        stats.print("recipe " + name + ", eng, psm 6");
    }
    for (int n : workers) {
        // Decode and clean first, so the timing is OCR alone, N threads pulling pages.
        auto clean = testing::NodeRunner::from_plugin(plugins / "libdocpipe-imaging.so", "transform.preprocess", "{device: cpu}");
        std::vector<Document> ready;
        for (const auto& img : images) {
            const std::string bytes = slurp(img);
            auto pages = decoder.process(Document::from_bytes(img.filename().string(), "image/jpeg", Bytes(bytes.begin(), bytes.end())));
            ready.push_back(*clean.process(*pages.at(0).doc).at(0).doc);
        }
        // Engines are loaded before the clock starts (a long-lived worker pays that once).
        std::vector<testing::NodeRunner> engines;
        for (int t = 0; t < n; ++t)
            engines.push_back(testing::NodeRunner::from_plugin(plugins / "libdocpipe-tesseract.so", "ocr.tesseract", "{languages: eng+msa, psm: 6}"));
        std::atomic<std::size_t> next{0};
        std::vector<std::thread> threads;
        const auto t0 = Steady::now();
        for (int t = 0; t < n; ++t)
            threads.emplace_back([&, t] {
                for (std::size_t i = next++; i < ready.size(); i = next++) engines[static_cast<std::size_t>(t)].process(ready[i]);
            });
        for (auto& t : threads) t.join();
        const double seconds = std::chrono::duration<double>(Steady::now() - t0).count();
        std::printf("throughput, %d OCR worker(s), eng+msa psm 6: %.2f pages/s (%zu pages in %.1f s)\n", n,
                    static_cast<double>(ready.size()) / seconds, ready.size(), seconds);
    }
    if (baseline) {
        Stats stats;
        for (const auto& img : images) {
            const std::string truth = slurp(fs::path(img).replace_extension(".lines.txt"));
            const auto t0 = Steady::now();
            const std::string cmd = "OMP_THREAD_LIMIT=1 tesseract '" + img.string() + "' stdout 2>/dev/null";
            std::string text;
            if (FILE* p = popen(cmd.c_str(), "r")) {
                char buf[4096];
                std::size_t n;
                while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
                pclose(p);
            }
            stats.seconds.push_back(std::chrono::duration<double>(Steady::now() - t0).count());
            stats.cers.push_back(cer(text, truth));
        }
        stats.print("baseline: tesseract IMG stdout");
    }
    return 0;
}
