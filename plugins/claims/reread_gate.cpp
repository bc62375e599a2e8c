#include "reread_gate.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "text.hpp"

namespace docpipe::claims {

ComponentDescriptor RereadGate::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Transform;
    d.name = "transform.claims_reread";
    d.summary = "Sends a receipt whose total or date came out weak to another OCR reading; the rest go on";
    d.concurrent_safe = true;
    d.output_ports = {{"done", "claims good enough, or read as often as allowed"},
                      {"reread", "OCR cleared: wire an OCR node (other settings) and transform.claims after it"}};
    d.config = ConfigSpec{
        Field::number("below").default_value(0.9).min(0).max(1.01)
            .describe("Reread when one of `fields` is missing or its confidence is below this (the extractor's own, provenance.extractor_confidence, when the claim was calibrated)"),
        Field::string_list("fields").default_value(nlohmann::json::array({"total_amount", "service_date"}))
            .describe("Receipt fields whose confidence decides"),
        Field::object("field_below").default_value(nlohmann::json::object())
            .describe("A field's own threshold in place of `below`, e.g. {service_date: 0.87}: a date read with a label "
                      "and a whole parse is right almost always after one reading, and another whole-page reading "
                      "rarely changes it (docs/claims-measurements.md, session 24)"),
        Field::integer("max_readings").default_value(2).min(2).max(10)
            .describe("Readings per receipt at most (counting the first)"),
        Field::enumeration("mode", {"page", "lines"}).default_value("page")
            .describe("page: clear the OCR so the next OCR node reads whole pages again; lines: keep it and ask "
                      "transform.ocr_lines to read only the weak fields' lines again (fields.reread_lines)"),
        Field::enumeration("confidence", {"extractor", "calibrated"}).default_value("extractor")
            .describe("Which confidence is compared with `below`: the extractor's own (provenance.extractor_confidence; "
                      "the readings are then chosen as when the shipped model was fitted) or the calibrated probability "
                      "(fewer rereads: only claims the model doubts)"),
        Field::integer("max_lines").default_value(6).min(1).max(50)
            .describe("lines mode: lines asked for at most (the weak value's own line, then its runners-up's)"),
    };
    return d;
}

RereadGate::RereadGate(const Config& config, Context& context)
    : ctx_(context),
      below_(config.get_number("below")),
      fields_(config.get_string_list("fields")),
      max_readings_(static_cast<int>(config.get_int("max_readings"))),
      lines_mode_(config.get_string("mode") == "lines"),
      calibrated_(config.get_string("confidence") == "calibrated"),
      max_lines_(static_cast<int>(config.get_int("max_lines"))) {
    const nlohmann::json own = config.get_object("field_below");  // a mapping: the config schema checked that
    for (const auto& [name, value] : own.items()) {
        if (std::find(fields_.begin(), fields_.end(), name) == fields_.end())
            throw std::invalid_argument(fmt::format("field_below names {}, which is not one of `fields` ({}): add it to `fields` or remove it",
                                                    name, fmt::join(fields_, ", ")));
        if (!value.is_number() || value.get<double>() < 0 || value.get<double>() > 1.01)
            throw std::invalid_argument(fmt::format("field_below.{} is {}: give a number from 0 to 1.01", name, docpipe::json_text(value)));
        field_below_[name] = value.get<double>();
    }
}

double RereadGate::threshold(const std::string& field) const {
    const auto own = field_below_.find(field);
    return own == field_below_.end() ? below_ : own->second;
}

std::vector<std::string> RereadGate::weak_fields(const Document& doc, std::vector<std::string>* names) const {
    std::vector<std::string> weak;
    const auto claim = doc.fields.find("claim");
    for (const auto& name : fields_) {
        if (claim == doc.fields.end() || !claim->contains(name)) {
            weak.push_back(name + " missing");
            continue;
        }
        // The extractor's own confidence, before calibration (confidence_model.hpp), when
        // the field has one: the confidence model was fitted on readings gated this way, so
        // gating on it keeps the readings it sees like the ones it learned from.
        const auto& field = (*claim)[name];
        const auto& prov = field.contains("provenance") ? field["provenance"] : nlohmann::json::object();
        const double c = !calibrated_ && prov.is_object() && prov.contains("extractor_confidence") && prov["extractor_confidence"].is_number()
                             ? prov["extractor_confidence"].get<double>()
                             : field.value("confidence", 0.0);
        if (c < threshold(name)) {
            weak.push_back(fmt::format("{} {:.2f}", name, c));
            if (names) names->push_back(name);
        }
    }
    return weak;
}

namespace {

// The band of a line that holds its text: as wide as the line, as tall as its typical word
// around their median centre. Tesseract's line box takes in a smudge or the tails of the
// line above, and a crop two lines tall reads as neither of them.
Box text_band(const OcrResult& ocr, int line_index) {
    const Box& line = ocr.lines[static_cast<std::size_t>(line_index)].box;
    std::vector<int> centres, heights;
    for (const auto& w : ocr.words)
        if (w.line == line_index && w.box.height > 0) {
            centres.push_back(w.box.y + w.box.height / 2);
            heights.push_back(w.box.height);
        }
    if (centres.empty()) return line;
    auto median = [](std::vector<int>& v) {
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
        return v[v.size() / 2];
    };
    const int centre = median(centres), height = median(heights);
    const int top = std::max(line.y, centre - height / 2 - height / 8);
    const int bottom = std::min(line.y + line.height, centre + height / 2 + height / 8);
    if (bottom <= top) return line;
    return {line.x, top, line.width, bottom - top};
}

// Intersection over union. In 64 bits: the provenance travels with the document, and a box
// near INT_MAX must not overflow.
double overlap_share(const Box& a, const std::array<int, 4>& b) {
    const std::int64_t x0 = std::max<std::int64_t>(a.x, b[0]), y0 = std::max<std::int64_t>(a.y, b[1]);
    const std::int64_t x1 = std::min<std::int64_t>(std::int64_t{a.x} + a.width, std::int64_t{b[0]} + b[2]);
    const std::int64_t y1 = std::min<std::int64_t>(std::int64_t{a.y} + a.height, std::int64_t{b[1]} + b[3]);
    if (x1 <= x0 || y1 <= y0) return 0.0;
    const double both = static_cast<double>(x1 - x0) * static_cast<double>(y1 - y0);
    const double either = static_cast<double>(a.width) * a.height + static_cast<double>(b[2]) * b[3] - both;
    return either > 0 ? both / either : 0.0;
}

}  // namespace

int RereadGate::line_in_current_reading(const OcrResult& ocr, const nlohmann::json& provenance) {
    // The provenance's line index counts the lines of the reading the value came from, which
    // after a merge need not be the page's current one (its lines split or join otherwise:
    // train 331's name was line 1 of its reading, line 1 now is the address). The line is
    // found again by its box, else by its text; an index alone (no box, no text) is trusted.
    const int index = provenance.contains("line") && provenance["line"].is_number_integer() ? provenance["line"].get<int>() : -1;
    if (provenance.contains("box") && provenance["box"].is_array() && provenance["box"].size() == 4 &&
        std::all_of(provenance["box"].begin(), provenance["box"].end(), [](const auto& v) { return v.is_number_integer(); })) {
        const auto box = provenance["box"].get<std::array<int, 4>>();
        int best = -1;
        double best_share = 0.5;  // at least half shared: the same line, not its neighbour
        for (std::size_t i = 0; box[2] > 0 && box[3] > 0 && i < ocr.lines.size(); ++i)
            if (const double share = overlap_share(ocr.lines[i].box, box); share >= best_share) {
                best_share = share;
                best = static_cast<int>(i);
            }
        if (best >= 0) return best;
        // No line there: the readings may have cut the line otherwise (one split into two
        // columns); its text may still be a whole line of this one.
    }
    if (provenance.contains("text") && provenance["text"].is_string()) {
        const std::string text = trim(provenance["text"].get<std::string>());
        if (text.empty()) return -1;
        // At its own index a piece of the line will do (total_field.cpp blanks the rest of a
        // line that holds two amounts side by side); elsewhere only the whole line.
        if (index >= 0 && static_cast<std::size_t>(index) < ocr.lines.size() &&
            ocr.lines[static_cast<std::size_t>(index)].text.find(text) != std::string::npos)
            return index;
        for (std::size_t i = 0; i < ocr.lines.size(); ++i)
            if (trim(ocr.lines[i].text) == text) return static_cast<int>(i);
        return -1;
    }
    return provenance.contains("box") ? -1 : index;
}

nlohmann::json RereadGate::lines_to_read(const Document& doc, const std::vector<std::string>& fields,
                                         std::vector<std::string>* covered) const {
    nlohmann::json lines = nlohmann::json::array();
    const auto& claim = doc.fields["claim"];
    // True when the line is (or already was) among those to read.
    auto add = [&](int page_index, int line_index, const std::string& why) {
        if (page_index < 0 || line_index < 0) return false;
        for (const auto& l : lines)
            if (l["page"] == page_index && l["line"] == line_index) return true;
        if (static_cast<int>(lines.size()) >= max_lines_) return false;
        const auto page = std::find_if(doc.pages.begin(), doc.pages.end(), [&](const Page& p) { return p.index == page_index; });
        if (page == doc.pages.end() || !page->ocr || !page->image.pixels ||
            static_cast<std::size_t>(line_index) >= page->ocr->lines.size())
            return false;
        const Box b = text_band(*page->ocr, line_index);
        if (b.width <= 0 || b.height <= 0) return false;
        lines.push_back({{"page", page_index}, {"line", line_index}, {"box", {b.x, b.y, b.width, b.height}}, {"why", why}});
        return true;
    };
    for (const auto& name : fields) {
        if (!claim.contains(name)) continue;  // nothing to point at: a page reading's job
        const auto& prov = claim[name].value("provenance", nlohmann::json::object());
        // Only receipt lines have a page; a value read from the email has nothing to crop.
        if (!prov.contains("page") || !prov["page"].is_number_integer()) continue;
        const int page = prov["page"].get<int>();
        const auto the_page = std::find_if(doc.pages.begin(), doc.pages.end(), [&](const Page& p) { return p.index == page; });
        if (the_page == doc.pages.end() || !the_page->ocr) continue;
        const int line = line_in_current_reading(*the_page->ocr, prov);
        // A field is read again only when its own line is: the reading then speaks for it.
        if (!add(page, line, name)) continue;
        if (covered) covered->push_back(name);
        // The runners-up: a misread total is often the digit-for-digit twin of one of them.
        // Their indices count the value's reading's lines: used only when that numbering is
        // the current reading's (the value's line kept its index).
        const bool same_numbering = prov.contains("line") && prov["line"].is_number_integer() && line == prov["line"].get<int>();
        if (same_numbering && prov.contains("alternatives") && prov["alternatives"].is_array())
            for (const auto& alt : prov["alternatives"])
                if (alt.is_object() && alt.contains("line") && alt["line"].is_number_integer())
                    add(page, alt["line"].get<int>(), name + " runner-up");
    }
    return lines;
}

void RereadGate::process(const DocumentPtr& input, Outputs& out) {
    if (!input->fields.contains("claim"))
        throw BadInput("no claim on the document: put transform.claims before transform.claims_reread");
    const int readings = input->fields.contains("readings") ? static_cast<int>(input->fields["readings"].size()) : 1;
    bool has_image = false;
    for (const auto& page : input->pages) has_image = has_image || (page.image.pixels && page.ocr);
    std::vector<std::string> weak_names;
    const auto weak = weak_fields(*input, &weak_names);
    if (weak.empty() || !has_image || readings >= max_readings_) {
        out.emit(input, "done");
        return;
    }
    nlohmann::json lines;
    std::vector<std::string> covers;  // lines mode: the fields whose own line is read again
    if (lines_mode_) {
        lines = lines_to_read(*input, weak_names, &covers);
        // A missing field has no line to point at: leave it to a page reading after this.
        if (lines.empty()) {
            out.emit(input, "done");
            return;
        }
    }
    auto doc = std::make_shared<Document>(*input);
    if (lines_mode_) {
        doc->fields["reread_lines"] = {{"reading", readings + 1}, {"fields", covers}, {"lines", lines}};
    } else {
        for (auto& page : doc->pages)
            if (page.image.pixels) page.ocr.reset();  // the next OCR node reads these pages again
    }
    doc->attributes["ocr_reading"] = std::to_string(readings + 1);
    std::string why;
    for (const auto& w : weak) why += (why.empty() ? "" : ", ") + w;
    doc->trace.push_back({ctx_.node_name(), "reread", 0.0, fmt::format("reading {}: {}", readings + 1, why)});
    ctx_.metrics().increment("claims_reread_total");
    out.emit(std::move(doc), "reread");
}

}  // namespace docpipe::claims
