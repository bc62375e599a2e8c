// transform.claims — see claims_transform.hpp.
#include "claims_transform.hpp"

#include <cstdio>

#include <fmt/core.h>

#include "docpipe/claim.hpp"
#include "text.hpp"

namespace docpipe::claims {

ComponentDescriptor ClaimsTransform::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Transform;
    d.name = "transform.claims";
    d.summary = "Claim fields (amount, date, receipt no., member/policy, provider, SST, items) from OCR text and the email, "
                "with per-field confidence and provenance";
    d.concurrent_safe = true;
    d.config = ConfigSpec{
        Field::string("rules").default_value("")
            .describe("YAML rules file (keywords, labels, patterns, weights); empty = the built-in default-rules.yaml"),
        Field::boolean("use_email").default_value(true)
            .describe("Read fields from the email subject and body too, and fuse them with the receipt's"),
    };
    return d;
}

ClaimsTransform::ClaimsTransform(const Config& config, Context& context) : ctx_(context), use_email_(config.get_bool("use_email")) {
    const std::string path = config.get_string("rules");
    if (path.empty()) {
        rules_ = std::make_shared<Rules>(Rules::builtin());
    } else {
        rules_ = std::make_shared<Rules>(Rules::load_file(path));  // RulesError names file:line:column
        ctx_.log().log(LogLevel::Info, fmt::format("claim rules from {}", path));
    }
    extractor_ = std::make_unique<ClaimExtractor>(*rules_);
}

std::vector<TextLine> ClaimsTransform::receipt_lines(const Document& doc) {
    std::vector<TextLine> lines;
    for (const auto& page : doc.pages) {
        if (page.ocr) {
            const std::size_t first = lines.size();
            int index = 0;
            for (const auto& l : page.ocr->lines) {
                TextLine t;
                t.text = l.text;
                t.page = page.index;
                t.index = index++;
                t.box = std::array<int, 4>{l.box.x, l.box.y, l.box.width, l.box.height};
                t.ocr_confidence = l.confidence;
                lines.push_back(std::move(t));
            }
            // Words in reading order, each found after the previous one in its line's text.
            std::vector<std::size_t> cursor(page.ocr->lines.size(), 0);
            for (const auto& w : page.ocr->words) {
                if (w.line < 0 || static_cast<std::size_t>(w.line) >= page.ocr->lines.size() || w.text.empty()) continue;
                TextLine& t = lines[first + static_cast<std::size_t>(w.line)];
                const std::size_t at = t.text.find(w.text, cursor[static_cast<std::size_t>(w.line)]);
                if (at == std::string::npos) continue;
                t.word_confidences.push_back({at, at + w.text.size(), w.confidence});
                cursor[static_cast<std::size_t>(w.line)] = at + w.text.size();
            }
        } else if (!page.text_layer.empty()) {
            int index = 0;
            for (auto& l : split_lines(page.text_layer)) {
                TextLine t;
                t.text = std::move(l);
                t.page = page.index;
                t.index = index++;
                lines.push_back(std::move(t));
            }
        }
    }
    return lines;
}

std::vector<TextLine> ClaimsTransform::email_lines(const Document& doc) {
    std::vector<TextLine> lines;
    auto add = [&](const std::string& text, const char* source) {
        int index = 0;
        for (auto& l : split_lines(text)) {
            TextLine t;
            t.text = std::move(l);
            t.source = source;
            t.index = index++;
            lines.push_back(std::move(t));
        }
    };
    if (auto it = doc.attributes.find("subject"); it != doc.attributes.end()) add(it->second, "email_subject");
    if (auto it = doc.attributes.find("body_text"); it != doc.attributes.end()) add(it->second, "email_body");
    return lines;
}

EmailContext ClaimsTransform::email_context(const Document& doc) {
    EmailContext c;
    // email_date is ISO 8601 ("2024-12-24T10:00:00+08:00"), set by transform.mime.
    if (auto it = doc.attributes.find("email_date"); it != doc.attributes.end())
        std::sscanf(it->second.c_str(), "%4d-%2d-%2d", &c.year, &c.month, &c.day);
    return c;
}

ClaimResult ClaimsTransform::extract(const Document& doc) const {
    std::vector<std::string> warnings;
    FieldMap receipt = extractor_->from_receipt(receipt_lines(doc), warnings);
    FieldMap email;
    if (use_email_) email = extractor_->from_email(email_lines(doc), email_context(doc), warnings);
    return extractor_->combine(std::move(receipt), std::move(email), std::move(warnings));
}

void ClaimsTransform::process(const DocumentPtr& input, Outputs& out) {
    if (input->pages.empty() && !input->attributes.count("body_text"))
        throw BadInput("no pages and no email text to read claim fields from (is an ocr node before this one?)");
    ClaimResult result = extract(*input);
    auto doc = std::make_shared<Document>(*input);
    nlohmann::json j = result.to_json();
    for (auto& [key, value] : j.items()) doc->fields[key] = value;
    ctx_.metrics().observe("claim_confidence", result.confidence);
    if (!result.missing.empty()) ctx_.metrics().increment("claims_missing_required_total");
    out.emit(std::move(doc));
}

}  // namespace docpipe::claims
