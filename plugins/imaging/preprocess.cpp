// transform.preprocess — page clean-up before OCR: grayscale, rescale into a width range,
// deskew, optional binarisation (Sauvola or Otsu). Each step can be turned off.
//
// Device: the CUDA kernels are not built yet, so `device: auto` runs the CPU reference and
// says so in its health probe, and `device: cuda` refuses to start with that reason.
//
// Example config:
//   clean:
//     component: transform.preprocess
//     config: {device: "${OCR_DEVICE:-auto}", deskew: true, binarize: off}
#include <chrono>
#include <cmath>

#include <fmt/core.h>

#include "docpipe/plugin.hpp"
#include "preprocess_cpu.hpp"

namespace docpipe::imaging {

class Preprocess : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.preprocess";
        d.summary = "Page clean-up before OCR: grayscale, rescale, deskew, binarise (CPU reference; CUDA kernels to come)";
        d.concurrent_safe = true;
        d.has_health_probe = true;
        d.config = ConfigSpec{
            Field::enumeration("device", {"auto", "cuda", "cpu"}).default_value("auto")
                .describe("auto: CUDA when usable, else the CPU; cuda: fail at start when no CUDA path is usable"),
            Field::boolean("grayscale").default_value(true).describe("Convert colour pages to 8-bit gray"),
            Field::integer("min_width").default_value(1000).min(0).describe("Narrower pages are scaled up to this width (0: never)"),
            Field::integer("max_width").default_value(2500).min(0).describe("Wider pages are scaled down to this width (0: never)"),
            Field::boolean("deskew").default_value(true).describe("Estimate the skew and rotate the page level"),
            Field::number("max_skew_degrees").default_value(15).min(0.5).max(45).describe("Largest skew searched for"),
            Field::enumeration("binarize", {"off", "sauvola", "otsu"}).default_value("off")
                .describe("off keeps gray (measured best on average for Tesseract); sauvola for unevenly lit pages"),
            Field::integer("sauvola_window").default_value(25).min(3).max(255).describe("Sauvola window, pixels"),
            Field::number("sauvola_k").default_value(0.2).min(0).max(1).describe("Sauvola k"),
        };
        return d;
    }

    Preprocess(const Config& c, Context& ctx)
        : ctx_(ctx),
          grayscale_(c.get_bool("grayscale")),
          min_width_(static_cast<int>(c.get_int("min_width"))),
          max_width_(static_cast<int>(c.get_int("max_width"))),
          deskew_(c.get_bool("deskew")),
          max_skew_(c.get_number("max_skew_degrees")),
          binarize_(c.get_string("binarize")),
          window_(static_cast<int>(c.get_int("sauvola_window"))),
          k_(c.get_number("sauvola_k")) {
        const std::string device = c.get_string("device");
        if (device == "cuda")
            throw std::runtime_error("device: cuda requested, but this build has no CUDA kernels for transform.preprocess yet; "
                                     "use device: auto or cpu");
        device_note_ = device == "auto" ? "cpu (auto: the CUDA kernels are not built in this version)" : "cpu (configured)";
        if (device == "auto") ctx_.log().warn("transform.preprocess runs on the CPU: the CUDA kernels are not built in this version");
    }

    HealthReport health() override { return {Health::Healthy, "device " + device_note_}; }

    void process(const DocumentPtr& input, Outputs& out) override {
        const auto t0 = std::chrono::steady_clock::now();
        auto doc = std::make_shared<Document>(*input);
        std::string detail;
        for (auto& page : doc->pages) {
            if (!page.image.pixels) continue;  // a PDF text layer: nothing to clean
            Image img = page.image;
            if (grayscale_ || deskew_ || binarize_ != "off") img = to_gray(img);  // the later steps work on gray
            if (img.channels == 1) {
                int target = img.width;
                if (max_width_ > 0 && img.width > max_width_) target = max_width_;
                if (min_width_ > 0 && img.width < min_width_) target = min_width_;
                if (target != img.width)
                    img = resize_gray(img, target, std::max(1, static_cast<int>(std::lround(img.height * static_cast<double>(target) / img.width))));
                double skew = 0;
                if (deskew_) {
                    skew = estimate_skew(img, max_skew_);
                    if (std::abs(skew) >= 0.1) img = rotate_gray(img, -skew);  // turn the rise back to level
                }
                if (binarize_ == "sauvola") img = binarize_sauvola(img, window_, k_);
                else if (binarize_ == "otsu") img = binarize_otsu(img);
                detail += fmt::format("{}page {}: {}x{} skew {:.2f}", detail.empty() ? "" : "; ", page.index + 1, img.width,
                                      img.height, skew);
            }
            page.image = std::move(img);
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        doc->trace.push_back({ctx_.node_name(), "preprocess", ms, detail});
        out.emit(std::move(doc));
    }

private:
    Context& ctx_;
    bool grayscale_;
    int min_width_, max_width_;
    bool deskew_;
    double max_skew_;
    std::string binarize_;
    int window_;
    double k_;
    std::string device_note_;
};

ComponentDescriptor preprocess_descriptor() { return component<Preprocess>(); }

}  // namespace docpipe::imaging
