// bench/preprocess — megapixels/second of each clean-up step and of the whole recipe on a
// real receipt scan, on the CPU and, when a CUDA device is usable, on the GPU (the CUDA
// rows skip with the reason otherwise). GPU numbers include the copies to and from the
// device, as transform.preprocess pays them per page.
//
//   build/bin/bench_preprocess --benchmark_filter=Recipe
#include <benchmark/benchmark.h>

#include "docpipe/testing.hpp"
#include "harness.hpp"
#include "preprocess_cpu.hpp"
#include "preprocess_cuda.hpp"

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
bool no_gpu(benchmark::State& s) {
    if (cuda_status().usable) return false;
    s.SkipWithError(("no CUDA device: " + cuda_status().reason).c_str());
    return true;
}
Recipe full_recipe() {
    Recipe r;
    r.border = r.denoise = r.contrast = true;
    r.binarize = "sauvola";
    return r;
}
}  // namespace

#define STEP_BENCH(NAME, INPUT, CPU_CALL, CUDA_CALL)                       \
    static void BM_Cpu_##NAME(benchmark::State& s) {                       \
        for (auto _ : s) benchmark::DoNotOptimize(CPU_CALL);               \
        megapixels(s, INPUT);                                              \
    }                                                                      \
    static void BM_Cuda_##NAME(benchmark::State& s) {                      \
        if (no_gpu(s)) return;                                             \
        for (auto _ : s) benchmark::DoNotOptimize(CUDA_CALL);              \
        megapixels(s, INPUT);                                              \
    }                                                                      \
    BENCHMARK(BM_Cpu_##NAME)->Unit(benchmark::kMillisecond);               \
    BENCHMARK(BM_Cuda_##NAME)->Unit(benchmark::kMillisecond)->UseRealTime();

STEP_BENCH(Gray, receipt(), to_gray(receipt()), cuda_to_gray(receipt()))
STEP_BENCH(ResizeHalf, gray(), resize_gray(gray(), gray().width / 2, gray().height / 2),
           cuda_resize(gray(), gray().width / 2, gray().height / 2))
STEP_BENCH(Rotate, gray(), rotate_gray(gray(), 3.0), cuda_rotate(gray(), 3.0))
STEP_BENCH(Median3, gray(), denoise_median3(gray()), cuda_denoise_median3(gray()))
STEP_BENCH(Contrast, gray(), stretch_contrast(gray(), 30, 220), cuda_stretch_contrast(gray(), 30, 220))
STEP_BENCH(Border, gray(), remove_border(gray()), cuda_remove_border(gray()))
STEP_BENCH(Sauvola, gray(), binarize_sauvola(gray(), 25, 0.2), cuda_binarize_sauvola(gray(), 25, 0.2))
STEP_BENCH(Otsu, gray(), binarize_otsu(gray()), cuda_binarize_otsu(gray()))
// Skew estimation runs on the host on both paths (see preprocess_cuda.cu).
static void BM_Cpu_EstimateSkew(benchmark::State& s) {
    for (auto _ : s) benchmark::DoNotOptimize(estimate_skew(gray(), 15));
    megapixels(s, gray());
}
BENCHMARK(BM_Cpu_EstimateSkew)->Unit(benchmark::kMillisecond);
// What transform.preprocess does with the shipped settings (gray, width limits, deskew)...
STEP_BENCH(DefaultRecipe, receipt(), run_recipe_cpu(receipt(), Recipe{}), cuda_run_recipe(receipt(), Recipe{}))
// ...and with every step on.
STEP_BENCH(FullRecipe, receipt(), run_recipe_cpu(receipt(), full_recipe()), cuda_run_recipe(receipt(), full_recipe()))
BENCHMARK_MAIN();
