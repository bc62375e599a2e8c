// Built when CMake found no CUDA compiler: the CUDA path reports why it is absent.
#include <stdexcept>

#include "preprocess_cuda.hpp"

namespace docpipe::imaging {

std::string CudaStatus::describe() const { return reason; }

const CudaStatus& cuda_status() {
    static const CudaStatus status = [] {
        CudaStatus s;
        s.reason = "this build has no CUDA kernels (nvcc was not found when it was configured; rebuild with DOCPIPE_CUDA=ON)";
        return s;
    }();
    return status;
}

namespace {
[[noreturn]] Image not_built() { throw std::runtime_error(cuda_status().reason); }
}  // namespace

Image cuda_run_recipe(const Image&, const Recipe&, double*) { not_built(); }
Image cuda_to_gray(const Image&) { not_built(); }
Image cuda_resize(const Image&, int, int) { not_built(); }
Image cuda_rotate(const Image&, double) { not_built(); }
Image cuda_binarize_sauvola(const Image&, int, double) { not_built(); }
Image cuda_binarize_otsu(const Image&) { not_built(); }
Image cuda_denoise_median3(const Image&) { not_built(); }
Image cuda_thicken_min3(const Image&) { not_built(); }
Image cuda_stretch_contrast(const Image&, int, int) { not_built(); }
Image cuda_remove_border(const Image&) { not_built(); }

}  // namespace docpipe::imaging
