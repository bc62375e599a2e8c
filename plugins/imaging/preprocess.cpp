// transform.preprocess — page clean-up before OCR: grayscale, rescale into a width range,
// optional border removal, denoise and contrast stretch, deskew, optional binarisation
// (Sauvola or Otsu). Each step can be turned off.
//
// Limits: before a pixel is made, every page's scaled size is worked out (plan_recipe, the
// host code both paths share) and checked: the input's `max_aspect_ratio`, the scaled
// page's `max_megapixels` (a narrow strip scaled up to min_width explodes), and
// `max_document_megapixels` for the document's pages together; each fails the document
// alone as bad input. Then the image memory the clean-up needs at its peak is reserved from
// the process-wide budget (`process_memory_mb`, shared with transform.pdf_pages), waiting up
// to `memory_wait` when other documents hold it, else retried later.
//
// Device: `auto` runs the CUDA kernels when this build has them and a GPU answers, else the
// CPU reference with one warning saying why; `cuda` refuses to start without a usable
// GPU; `cpu` always uses the CPU. Both paths give the same pixels (preprocess_cuda.hpp).
//
// Example config:
//   clean:
//     component: transform.preprocess
//     config: {device: "${OCR_DEVICE:-auto}", deskew: true, binarize: "off"}
#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/core.h>

#include "budget.hpp"
#include "docpipe/plugin.hpp"
#include "preprocess_cpu.hpp"
#include "preprocess_cuda.hpp"

namespace docpipe::imaging {

class Preprocess : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.preprocess";
        d.summary = "Page clean-up before OCR: grayscale, rescale, border, denoise, contrast, deskew, binarise (CUDA or CPU)";
        d.concurrent_safe = true;
        d.has_health_probe = true;
        d.config = ConfigSpec{
            Field::enumeration("device", {"auto", "cuda", "cpu"}).default_value("auto")
                .describe("auto: CUDA when usable, else the CPU; cuda: fail at start when no CUDA device is usable"),
            Field::boolean("grayscale").default_value(true).describe("Convert colour pages to 8-bit gray (every other step needs gray)"),
            Field::boolean("crop").default_value(false).describe("Cut a small receipt out of a big scanned page (a receipt on an A4 scan) before scaling"),
            Field::integer("min_width").default_value(1000).min(0).describe("Narrower pages are scaled up to this width (0: never)"),
            Field::integer("max_width").default_value(2500).min(0).describe("Wider pages are scaled down to this width (0: never)"),
            Field::boolean("border").default_value(false).describe("Paint dark scan borders (lid, table) white"),
            Field::boolean("denoise").default_value(false).describe("3x3 median: removes speckle and dust"),
            Field::boolean("thicken").default_value(false).describe("3x3 minimum after deskew: dark strokes one pixel thicker, so broken dot-matrix and faint thermal print joins up"),
            Field::boolean("contrast").default_value(false).describe("Stretch gray levels so faint print gets dark"),
            Field::number("contrast_clip").default_value(0.01).min(0).max(0.2)
                .describe("Share of pixels clipped at each end by the contrast stretch"),
            Field::boolean("deskew").default_value(true).describe("Estimate the skew and rotate the page level; a page lying sideways (its lines run down it) is levelled for reading upright"),
            Field::number("max_skew_degrees").default_value(15).min(0.5).max(45).describe("Largest skew searched for"),
            Field::enumeration("binarize", {"off", "sauvola", "otsu"}).default_value("off")
                .describe("off keeps gray (measured best on average for Tesseract); sauvola for unevenly lit pages"),
            Field::integer("sauvola_window").default_value(25).min(3).max(255).describe("Sauvola window, pixels"),
            Field::number("sauvola_k").default_value(0.2).min(0).max(1).describe("Sauvola k"),
            Field::number("max_megapixels").default_value(40).min(0.01)
                .describe("Largest page the clean-up makes, after scaling into the width range; checked before anything is "
                          "allocated (a 1x1500 pixel strip scaled to min_width would be 1000x1500000)"),
            Field::number("max_aspect_ratio").default_value(25).min(0)
                .describe("Long side over short side of an input page; beyond it the page is refused as not a receipt "
                          "(a long receipt, 80 x 600 mm, is 7.5). 0: no limit"),
        };
        DocumentBudget::add_fields(d.config, "All cleaned pages of one document together; more fails that document alone");
        // min_width over max_width: one of them would be dropped without a word (a 615 px
        // receipt came out 3000 px wide with max_width: 100).
        d.config.rule("max_width", "min_width is at most max_width when both are set", [](const Config& c) -> std::string {
            const auto low = c.get_int("min_width"), high = c.get_int("max_width");
            if (low == 0 || high == 0 || low <= high) return "";
            return fmt::format("max_width ({}) is under min_width ({}): no width fits both; raise max_width, lower min_width, "
                               "or set one of them to 0 (never)", high, low);
        });
        return d;
    }

    Preprocess(const Config& c, Context& ctx) : ctx_(ctx), grayscale_(c.get_bool("grayscale")), budget_(c) {
        recipe_.crop = c.get_bool("crop");
        recipe_.min_width = static_cast<int>(c.get_int("min_width"));
        recipe_.max_width = static_cast<int>(c.get_int("max_width"));
        recipe_.border = c.get_bool("border");
        recipe_.denoise = c.get_bool("denoise");
        recipe_.contrast = c.get_bool("contrast");
        recipe_.thicken = c.get_bool("thicken");
        recipe_.contrast_low = recipe_.contrast_high = c.get_number("contrast_clip");
        recipe_.deskew = c.get_bool("deskew");
        recipe_.max_skew = c.get_number("max_skew_degrees");
        recipe_.binarize = c.get_string("binarize");
        recipe_.sauvola_window = static_cast<int>(c.get_int("sauvola_window"));
        recipe_.sauvola_k = c.get_number("sauvola_k");
        recipe_.max_megapixels = c.get_number("max_megapixels");
        recipe_.max_aspect_ratio = c.get_number("max_aspect_ratio");

        const std::string device = c.get_string("device");
        const CudaStatus& cuda = cuda_status();
        if (device == "cuda" && !cuda.usable)
            throw std::runtime_error("device: cuda requested, but " + cuda.reason + "; use device: auto or cpu");
        use_cuda_ = device != "cpu" && cuda.usable;
        if (use_cuda_) {
            device_note_ = cuda.describe();
        } else if (device == "auto") {
            device_note_ = "cpu (auto: " + cuda.reason + ")";
            ctx_.log().log(LogLevel::Warn, "transform.preprocess runs on the CPU: " + cuda.reason);
        } else {
            device_note_ = "cpu (configured)";
        }
    }

    HealthReport health() override { return {Health::Healthy, "device " + device_note_}; }

    void process(const DocumentPtr& input, Outputs& out) override {
        const auto t0 = std::chrono::steady_clock::now();
        auto doc = std::make_shared<Document>(*input);
        std::string detail;
        const bool any_step = grayscale_ || recipe_.crop || recipe_.deskew || recipe_.border || recipe_.denoise || recipe_.contrast || recipe_.thicken ||
                              recipe_.binarize != "off" || recipe_.min_width > 0 || recipe_.max_width > 0;
        // Every page's size and memory first: nothing is made until the whole document fits.
        const std::string name = document_name(*input);
        double megapixels = 0;
        std::size_t kept = 0, extra = 0;
        for (const auto& page : doc->pages) {
            if (!page.image.pixels || !any_step) continue;
            RecipePlan plan;
            try {
                plan = plan_recipe(recipe_, page.image.width, page.image.height, page.image.channels);
            } catch (const BadInput& e) {
                throw BadInput(fmt::format("{}: page {}: {}", name, page.index + 1, e.what()));
            }
            megapixels += static_cast<double>(plan.width) * plan.height / 1e6;
            kept += plan.output_bytes;
            extra = std::max(extra, plan.peak_bytes - plan.output_bytes);
        }
        const ImageMemory::Lease lease = budget_.admit(name, "cleaned pages would be", megapixels, kept + extra, "; not cleaned");

        for (auto& page : doc->pages) {
            if (!page.image.pixels || !any_step) continue;  // a PDF text layer: nothing to clean
            double skew = 0;
            page.image = use_cuda_ ? cuda_run_recipe(page.image, recipe_, &skew) : run_recipe_cpu(page.image, recipe_, &skew);
            detail += fmt::format("{}page {}: {}x{} skew {:.2f}", detail.empty() ? "" : "; ", page.index + 1, page.image.width,
                                  page.image.height, skew);
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        doc->trace.push_back({ctx_.node_name(), use_cuda_ ? "preprocess (cuda)" : "preprocess", ms, detail});
        ctx_.metrics().observe("preprocess_seconds", ms / 1000.0, {{"device", use_cuda_ ? "cuda" : "cpu"}});
        out.emit(std::move(doc));
    }

private:
    // Which file the document is, for messages: an attachment's name, else its part's.
    static std::string document_name(const Document& doc) {
        if (auto it = doc.attributes.find("filename"); it != doc.attributes.end() && !it->second.empty()) return it->second;
        if (!doc.parts.empty() && !doc.parts.front().name.empty()) return doc.parts.front().name;
        return "document " + doc.id;
    }

    Context& ctx_;
    bool grayscale_;
    Recipe recipe_;
    DocumentBudget budget_;
    bool use_cuda_ = false;
    std::string device_note_;
};

ComponentDescriptor preprocess_descriptor() { return component<Preprocess>(); }

}  // namespace docpipe::imaging
