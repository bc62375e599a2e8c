#include "confidence_router.hpp"

#include <openssl/evp.h>

#include <fmt/core.h>

#include "extractor.hpp"

namespace docpipe::claims {

ComponentDescriptor ConfidenceRouter::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Transform;
    d.name = "transform.confidence_router";
    d.summary = "Routes claims by overall confidence to high / medium / low; missing required fields always go low";
    d.concurrent_safe = true;
    d.output_ports = {{"high", "confidence >= high: submit"},
                      {"medium", "medium <= confidence < high: submit, flagged for review"},
                      {"low", "below medium, or a required field missing: review queue"}};
    d.config = ConfigSpec{
        Field::number("high").default_value(0.90).min(0).max(1).describe("Lowest overall confidence routed to `high`"),
        Field::number("medium").default_value(0.75).min(0).max(1).describe("Lowest overall confidence routed to `medium`"),
        Field::number("qa_sample_rate").default_value(0.0).min(0).max(1)
            .describe("Share of `high` documents flagged (fields.review_flag = qa_sample) for a person to check"),
    };
    d.config.rule("medium", "medium is at most high", [](const Config& c) -> std::string {
        if (c.get_number("medium") <= c.get_number("high")) return "";
        return fmt::format("medium ({}) must not be above high ({}): lower `medium` or raise `high`", c.get_number("medium"),
                           c.get_number("high"));
    });
    return d;
}

ConfidenceRouter::ConfidenceRouter(const Config& config, Context& context)
    : ctx_(context), high_(config.get_number("high")), medium_(config.get_number("medium")), qa_rate_(config.get_number("qa_sample_rate")) {
    // medium <= high is the descriptor's rule, checked before any constructor runs.
}

std::string ConfidenceRouter::route_for(const Document& doc, std::string& reason) const {
    if (!doc.fields.contains("confidence"))
        throw BadInput("no claim confidence on the document: put transform.claims before the router");
    const double c = doc.fields.value("confidence", 0.0);
    std::vector<std::string> missing;
    if (auto m = doc.fields.find("missing"); m != doc.fields.end() && m->is_array())
        for (const auto& x : *m) missing.push_back(x.get<std::string>());
    if (!missing.empty()) {
        std::string list;
        for (const auto& x : missing) list += (list.empty() ? "" : ", ") + x;
        reason = "missing required field(s): " + list;
        return "low";
    }
    // transform.mime: the email also holds a file that could not be read and may hide another
    // receipt. Booked without a person, that receipt was lost with only a log line to say so.
    if (auto u = doc.attributes.find("unreadable_attachments"); u != doc.attributes.end() && !u->second.empty()) {
        reason = "the email also holds a file that could not be read and may hold another receipt: " + u->second +
                 "; check it with the sender";
        return "low";
    }
    if (c >= high_) return "high";
    if (c >= medium_) {
        reason = fmt::format("confidence {:.2f} below {:.2f}", c, high_);
        return "medium";
    }
    reason = fmt::format("confidence {:.2f} below {:.2f}", c, medium_);
    return "low";
}

void ConfidenceRouter::process(const DocumentPtr& input, Outputs& out) {
    std::string reason;
    const std::string route = route_for(*input, reason);
    auto doc = std::make_shared<Document>(*input);
    doc->fields["confidence_level"] = route;
    if (!reason.empty()) {
        // A reviewer needs to know which field held the score down and why, more than the
        // number: the weakest required field, then the warning about it (else the first).
        std::string why = reason;
        std::string weakest;
        double weakest_confidence = 2;
        if (auto claim = doc->fields.find("claim"); claim != doc->fields.end() && claim->is_object())
            for (const auto& required : required_fields()) {
                // "member_id|policy_number": either counts, so the better of the two.
                std::string best;
                double best_confidence = -1;
                for (std::size_t b = 0, e; b <= required.size(); b = e + 1) {
                    e = std::min(required.find('|', b), required.size());
                    const std::string name = required.substr(b, e - b);
                    if (auto f = claim->find(name); f != claim->end() && f->is_object() && f->value("confidence", 0.0) > best_confidence) {
                        best_confidence = f->value("confidence", 0.0);
                        best = name;
                    }
                }
                if (!best.empty() && best_confidence < weakest_confidence) {
                    weakest_confidence = best_confidence;
                    weakest = best;
                }
            }
        if (!weakest.empty() && reason.rfind("missing", 0) != 0) why += fmt::format(" (weakest: {} {:.2f})", weakest, weakest_confidence);
        bool named = false;  // a warning about the weakest field is in the reason
        if (auto w = doc->fields.find("warnings"); w != doc->fields.end() && w->is_array() && !w->empty()) {
            std::string first = (*w)[0].get<std::string>();
            for (const auto& x : *w)
                if (x.is_string() && !weakest.empty() && x.get<std::string>().rfind(weakest + ":", 0) == 0) {
                    first = x.get<std::string>();
                    named = true;
                    break;
                }
            why += "; " + first;
        }
        // No warning about it (a calibrated confidence can be low with nothing wrong to say):
        // its value and the runner-up the extractor weighed against it, so a reviewer knows
        // what to look at.
        if (!named && !weakest.empty() && reason.rfind("missing", 0) != 0)
            if (auto claim = doc->fields.find("claim"); claim != doc->fields.end() && claim->contains(weakest)) {
                const auto& f = (*claim)[weakest];
                const auto show = [](const nlohmann::json& v) {
                    if (v.is_number_float()) return fmt::format("{:.2f}", v.get<double>());
                    return v.is_string() ? v.get<std::string>() : docpipe::json_text(v);
                };
                std::string what = fmt::format("{}: {}", weakest, show(f.value("value", nlohmann::json())));
                const auto& p = f.value("provenance", nlohmann::json::object());
                if (p.is_object() && p.contains("alternatives") && p["alternatives"].is_array() && !p["alternatives"].empty()) {
                    const auto& alt = p["alternatives"][0];
                    what += fmt::format(", runner-up {}", show(alt.value("value", nlohmann::json())));
                    if (alt.contains("line")) what += fmt::format(" (line {})", docpipe::json_text(alt["line"]));
                } else if (p.is_object() && p.contains("line")) {
                    what += fmt::format(" (line {})", docpipe::json_text(p["line"]));
                }
                why += "; " + what;
            }
        doc->attributes["review_reason"] = why;
    }
    if (route == "high" && qa_rate_ > 0) {
        unsigned char digest[32];
        unsigned int n = 0;
        EVP_Digest(doc->id.data(), doc->id.size(), digest, &n, EVP_sha256(), nullptr);
        const double draw = static_cast<double>((digest[0] << 8) | digest[1]) / 65536.0;
        if (draw < qa_rate_) {
            doc->fields["review_flag"] = "qa_sample";
            ctx_.metrics().increment("qa_sampled_total");
        }
    }
    ctx_.metrics().increment("routed_total", 1, {{"route", route}});
    out.emit(std::move(doc), route);
}

}  // namespace docpipe::claims
