#include "line_reader.hpp"

#include <tesseract/baseapi.h>
#include <tesseract/ocrclass.h>

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

namespace docpipe::tesseract_ocr {

ComponentDescriptor LineReader::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Transform;
    d.name = "transform.ocr_lines";
    d.summary = "Reads the lines a claims_reread gate chose again, each cropped, scaled up and read as one line (psm 7)";
    d.concurrent_safe = true;
    d.config = ConfigSpec{
        Field::string("languages").default_value("eng").describe("Tesseract languages joined by '+'"),
        Field::integer("psm").default_value(7).min(0).max(13)
            .describe("Page segmentation mode for a crop; 7 reads it as one text line"),
        Field::string("tessdata_dir").describe("Folder with <lang>.traineddata (default: Tesseract's own)"),
        Field::integer("line_height").default_value(48).min(8).max(400)
            .describe("A crop is scaled up (never down, at most 4x) so its line is about this many pixels tall"),
        Field::integer("max_lines").default_value(8).min(1).max(100)
            .describe("Lines read per document at most (the rest keep their first reading)"),
        Field::duration("line_timeout").default_value("10s").min(0.001).max(3600)
            .describe("Longest OCR of one line; one over it keeps its first reading"),
        Field::integer("default_dpi").default_value(300).min(50).max(1200)
            .describe("Resolution assumed for pages that do not state one"),
    };
    return d;
}

LineReader::LineReader(const Config& c, Context& ctx)
    : ctx_(ctx),
      line_height_(static_cast<int>(c.get_int("line_height"))),
      max_lines_(static_cast<int>(c.get_int("max_lines"))),
      timeout_(c.get_duration("line_timeout")),
      default_dpi_(static_cast<int>(c.get_int("default_dpi"))),
      pool_(c.has("tessdata_dir") ? c.get_string("tessdata_dir") : EnginePool::default_tessdata(), c.get_string("languages"),
            static_cast<int>(c.get_int("psm"))) {}

LineReader::Crop LineReader::crop_line(const Image& page, const Box& box, int line_height) {
    Crop crop;
    if (!page.pixels || page.width <= 0 || page.height <= 0 || box.width <= 0 || box.height <= 0) return crop;
    // A margin of half the line's height: the box is Tesseract's tight one, and a crop that
    // cuts the tops of digits or a trailing decimal reads worse than the page did.
    const int margin = std::max(4, box.height / 2);
    const int x0 = std::max(0, box.x - margin), y0 = std::max(0, box.y - margin / 2);
    const int x1 = std::min(page.width, box.x + box.width + margin), y1 = std::min(page.height, box.y + box.height + margin / 2);
    if (x1 <= x0 || y1 <= y0) return crop;
    const int w = x1 - x0, h = y1 - y0;
    crop.scale = std::clamp(static_cast<double>(line_height) / box.height, 1.0, 4.0);
    const int sw = std::max(1, static_cast<int>(std::lround(w * crop.scale)));
    const int sh = std::max(1, static_cast<int>(std::lround(h * crop.scale)));
    const auto& src = *page.pixels;
    const int ch = page.channels;
    auto gray_at = [&](int x, int y) -> double {
        const std::size_t at = (static_cast<std::size_t>(y0 + y) * page.width + (x0 + x)) * ch;
        if (ch >= 3) return 0.299 * src[at] + 0.587 * src[at + 1] + 0.114 * src[at + 2];
        return src[at];
    };
    // Bilinear: an upscaled line keeps smooth stroke edges for Tesseract's own binarisation.
    auto out = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(sw) * sh);
    for (int y = 0; y < sh; ++y) {
        const double fy = std::clamp((y + 0.5) / crop.scale - 0.5, 0.0, h - 1.0);
        const int iy = static_cast<int>(fy), jy = std::min(iy + 1, h - 1);
        const double ty = fy - iy;
        for (int x = 0; x < sw; ++x) {
            const double fx = std::clamp((x + 0.5) / crop.scale - 0.5, 0.0, w - 1.0);
            const int ix = static_cast<int>(fx), jx = std::min(ix + 1, w - 1);
            const double tx = fx - ix;
            const double v = (1 - ty) * ((1 - tx) * gray_at(ix, iy) + tx * gray_at(jx, iy)) +
                             ty * ((1 - tx) * gray_at(ix, jy) + tx * gray_at(jx, jy));
            (*out)[static_cast<std::size_t>(y) * sw + x] = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        }
    }
    crop.image = Image{sw, sh, 1, page.dpi > 0 ? static_cast<int>(std::lround(page.dpi * crop.scale)) : 0, std::move(out)};
    crop.origin_x = x0;
    crop.origin_y = y0;
    return crop;
}

void LineReader::process(const DocumentPtr& input, Outputs& out) {
    const auto request = input->fields.find("reread_lines");
    if (request == input->fields.end() || !request->is_object() || !request->contains("lines") || !request->at("lines").is_array()) {
        out.emit(input);
        return;
    }
    auto doc = std::make_shared<Document>(*input);
    nlohmann::json readings = nlohmann::json::array();
    std::vector<std::string> skipped;
    int read = 0;
    for (const auto& want : (*request)["lines"]) {
        if (read >= max_lines_) {
            skipped.push_back("over max_lines");
            break;
        }
        // The request travels with the document (a queue between processes may carry it):
        // anything malformed in it is skipped with the reason, never an error of the page.
        const auto integer = [](const nlohmann::json& j, const char* key) {
            return j.is_object() && j.contains(key) && j[key].is_number_integer() ? j[key].get<int>() : -1;
        };
        const int page_index = integer(want, "page"), line_index = integer(want, "line");
        const auto page = std::find_if(doc->pages.begin(), doc->pages.end(), [&](const Page& p) { return p.index == page_index; });
        const nlohmann::json b = want.is_object() ? want.value("box", nlohmann::json()) : nlohmann::json();
        const bool box_ok = b.is_array() && b.size() == 4 &&
                            std::all_of(b.begin(), b.end(), [](const nlohmann::json& v) { return v.is_number_integer(); });
        if (page == doc->pages.end() || !box_ok) {
            skipped.push_back(fmt::format("page {} line {}: no such page, or no box of four whole numbers", page_index + 1, line_index + 1));
            continue;
        }
        const Box box{b[0].get<int>(), b[1].get<int>(), b[2].get<int>(), b[3].get<int>()};
        const Crop crop = crop_line(page->image, box, line_height_);
        if (!crop.image.pixels) {
            skipped.push_back(fmt::format("page {} line {}: box off the page image", page_index + 1, line_index + 1));
            continue;
        }
        auto api = pool_.acquire();
        api->SetImage(crop.image.pixels->data(), crop.image.width, crop.image.height, 1, crop.image.width);
        api->SetSourceResolution(crop.image.dpi > 0 ? crop.image.dpi : default_dpi_);
        tesseract::ETEXT_DESC monitor;
        monitor.set_deadline_msecs(static_cast<int32_t>(timeout_.count()));
        const bool failed = api->Recognize(&monitor) != 0 || monitor.deadline_exceeded();
        if (failed) {
            api->Clear();
            skipped.push_back(fmt::format("page {} line {}: not recognised in {} ms", page_index + 1, line_index + 1, timeout_.count()));
            continue;
        }
        OcrResult r = read_result(*api.get());
        api->Clear();
        ++read;
        // psm 7 gives one line; join whatever came back, so nothing read is dropped.
        std::string text;
        double confidence_sum = 0;
        nlohmann::json words = nlohmann::json::array();
        for (const auto& w : r.words) {
            if (w.text.empty()) continue;
            text += (text.empty() ? "" : " ") + w.text;
            confidence_sum += w.confidence;
            words.push_back({{"text", w.text}, {"confidence", w.confidence}});
        }
        readings.push_back({{"page", page_index},
                            {"line", line_index},
                            {"text", text},
                            {"confidence", words.empty() ? 0.0 : confidence_sum / static_cast<double>(words.size())},
                            {"box", b},
                            {"words", std::move(words)}});
    }
    const nlohmann::json reading = request->value("reading", nlohmann::json());
    const nlohmann::json fields = request->value("fields", nlohmann::json());
    doc->fields["line_readings"] = {{"reading", reading.is_number_integer() ? reading.get<int>() : 0},
                                    {"fields", fields.is_array() ? fields : nlohmann::json::array()},
                                    {"lines", std::move(readings)}};
    doc->fields.erase("reread_lines");
    std::string note = fmt::format("{} line(s) read again as single lines", read);
    for (const auto& s : skipped) note += "; skipped " + s;
    doc->trace.push_back({ctx_.node_name(), "lines", 0.0, note});
    ctx_.metrics().increment("ocr_lines_total", read);
    out.emit(std::move(doc));
}

}  // namespace docpipe::tesseract_ocr
