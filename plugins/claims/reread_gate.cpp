#include "reread_gate.hpp"

#include <fmt/core.h>

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
        Field::integer("max_readings").default_value(2).min(2).max(10)
            .describe("Readings per receipt at most (counting the first)"),
    };
    return d;
}

RereadGate::RereadGate(const Config& config, Context& context)
    : ctx_(context),
      below_(config.get_number("below")),
      fields_(config.get_string_list("fields")),
      max_readings_(static_cast<int>(config.get_int("max_readings"))) {}

std::vector<std::string> RereadGate::weak_fields(const Document& doc) const {
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
        const double c = prov.is_object() && prov.contains("extractor_confidence") && prov["extractor_confidence"].is_number()
                             ? prov["extractor_confidence"].get<double>()
                             : field.value("confidence", 0.0);
        if (c < below_) weak.push_back(fmt::format("{} {:.2f}", name, c));
    }
    return weak;
}

void RereadGate::process(const DocumentPtr& input, Outputs& out) {
    if (!input->fields.contains("claim"))
        throw BadInput("no claim on the document: put transform.claims before transform.claims_reread");
    const int readings = input->fields.contains("readings") ? static_cast<int>(input->fields["readings"].size()) : 1;
    bool has_image = false;
    for (const auto& page : input->pages) has_image = has_image || (page.image.pixels && page.ocr);
    const auto weak = weak_fields(*input);
    if (weak.empty() || !has_image || readings >= max_readings_) {
        out.emit(input, "done");
        return;
    }
    auto doc = std::make_shared<Document>(*input);
    for (auto& page : doc->pages)
        if (page.image.pixels) page.ocr.reset();  // the next OCR node reads these pages again
    doc->attributes["ocr_reading"] = std::to_string(readings + 1);
    std::string why;
    for (const auto& w : weak) why += (why.empty() ? "" : ", ") + w;
    doc->trace.push_back({ctx_.node_name(), "reread", 0.0, fmt::format("reading {}: {}", readings + 1, why)});
    ctx_.metrics().increment("claims_reread_total");
    out.emit(std::move(doc), "reread");
}

}  // namespace docpipe::claims
