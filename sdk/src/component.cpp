#include "docpipe/component.hpp"

namespace docpipe {

std::string_view to_string(ComponentKind kind) {
    switch (kind) {
        case ComponentKind::Source: return "source";
        case ComponentKind::Transform: return "transform";
        case ComponentKind::Ocr: return "ocr";
        case ComponentKind::Sink: return "sink";
    }
    return "?";
}

std::string_view to_string(Health health) {
    switch (health) {
        case Health::Healthy: return "healthy";
        case Health::Degraded: return "degraded";
        case Health::Unavailable: return "unavailable";
    }
    return "?";
}

std::string mask(std::string_view value) {
    if (value.size() <= 2) return std::string(value.size(), '*');
    return std::string(1, value.front()) + std::string(value.size() - 2, '*') + std::string(1, value.back());
}

void Ocr::process(const DocumentPtr& input, Outputs& out) {
    auto doc = std::make_shared<Document>(*input);
    for (auto& page : doc->pages) {
        if (page.ocr || !page.image.pixels) continue;
        page.ocr = recognize(page);
    }
    out.emit(std::move(doc));
}

nlohmann::json ComponentDescriptor::to_json() const {
    nlohmann::json ports = nlohmann::json::array();
    for (const auto& p : output_ports) ports.push_back({{"name", p.name}, {"description", p.description}});
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& r : config.rules()) rules.push_back({{"key", r.key}, {"description", r.description}});
    return {{"kind", to_string(kind)},
            {"name", name},
            {"summary", summary},
            {"config", config.to_json()},
            {"config_rules", std::move(rules)},
            {"output_ports", std::move(ports)},
            {"concurrent_safe", concurrent_safe},
            {"health_probe", has_health_probe}};
}

}  // namespace docpipe
