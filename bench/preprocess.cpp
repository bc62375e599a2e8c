// bench/preprocess — megapixels/second of each CPU clean-up step and of the default recipe
// (gray -> deskew) on a real receipt scan (CUDA numbers arrive with the kernels).
#include <benchmark/benchmark.h>

#include "docpipe/testing.hpp"
#include "harness.hpp"
#include "preprocess_cpu.hpp"

using namespace docpipe;
using namespace docpipe::imaging;

namespace {
const Image& receipt() {
    static const Image image = [] {
        auto decoder = testing::NodeRunner::from_plugin(std::filesystem::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-imaging.so",
                                                        "transform.pdf_pages", "");
        auto out = decoder.process(Document::from_bytes(
            "r.jpg", "image/jpeg", test::read_bytes(std::filesystem::path(DOCPIPE_SOURCE_DIR) / "tests/data/malaysian_receipt_test.jpg")));
        return out.at(0).doc->pages.at(0).image;
    }();
    return image;
}
const Image& gray() {
    static const Image g = to_gray(receipt());
    return g;
}
void megapixels(benchmark::State& state, const Image& img) {
    state.counters["MP/s"] = benchmark::Counter(static_cast<double>(img.width) * img.height / 1e6, benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace

static void BM_Gray(benchmark::State& s) {
    for (auto _ : s) benchmark::DoNotOptimize(to_gray(receipt()));
    megapixels(s, receipt());
}
static void BM_Resize(benchmark::State& s) {
    for (auto _ : s) benchmark::DoNotOptimize(resize_gray(gray(), gray().width / 2, gray().height / 2));
    megapixels(s, gray());
}
static void BM_EstimateSkew(benchmark::State& s) {
    for (auto _ : s) benchmark::DoNotOptimize(estimate_skew(gray(), 15));
    megapixels(s, gray());
}
static void BM_Rotate(benchmark::State& s) {
    for (auto _ : s) benchmark::DoNotOptimize(rotate_gray(gray(), 3.0));
    megapixels(s, gray());
}
static void BM_Sauvola(benchmark::State& s) {
    for (auto _ : s) benchmark::DoNotOptimize(binarize_sauvola(gray(), 25, 0.2));
    megapixels(s, gray());
}
static void BM_Otsu(benchmark::State& s) {
    for (auto _ : s) benchmark::DoNotOptimize(binarize_otsu(gray()));
    megapixels(s, gray());
}
static void BM_DefaultRecipe(benchmark::State& s) {  // what transform.preprocess does by default
    for (auto _ : s) {
        Image g = to_gray(receipt());
        const double skew = estimate_skew(g, 15);
        if (std::abs(skew) >= 0.1) g = rotate_gray(g, -skew);
        benchmark::DoNotOptimize(g);
    }
    megapixels(s, receipt());
}
BENCHMARK(BM_Gray)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Resize)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EstimateSkew)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Rotate)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sauvola)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Otsu)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DefaultRecipe)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
