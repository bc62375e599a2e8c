// transform.claims — see claims_transform.hpp.
#include "claims_transform.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

#include <fmt/core.h>

#include "confidence_model.hpp"
#include "docpipe/claim.hpp"
#include "field_check.hpp"
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
        Field::string("rules").path().default_value("")
            .describe("YAML rules file (keywords, labels, patterns, weights); empty = the built-in default-rules.yaml"),
        Field::string("confidence_model").path().default_value("")
            .describe("Calibrated confidence model and fitted candidate choosers for total_amount and service_date (JSON, refit "
                      "with scripts/fit-claims-confidence.py and scripts/fit-claims-chooser.py); empty = the built-in "
                      "confidence-model.json"),
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
    const std::string model = config.get_string("confidence_model");
    if (model.empty()) {
        model_ = std::make_shared<ConfidenceModel>(ConfidenceModel::builtin());
    } else {
        model_ = std::make_shared<ConfidenceModel>(ConfidenceModel::load_file(model));  // names file, field, feature
        ctx_.log().log(LogLevel::Info, fmt::format("claim confidence model from {}", model));
    }
    // The model file's fitted total and date choosers (owned by model_, which outlives extractor_).
    extractor_ = std::make_unique<ClaimExtractor>(*rules_, model_->chooser("total_amount"), model_->chooser("service_date"));
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

int ClaimsTransform::reading_number(const Document& doc) {
    auto it = doc.attributes.find("ocr_reading");
    if (it == doc.attributes.end()) return 1;
    try {
        return std::max(1, std::stoi(it->second));
    } catch (const std::exception&) {
        return 1;
    }
}

namespace {

// The longest line the extractor reads. Lines holding claim fields are short; libstdc++'s
// regex engine recurses once per character, so one line of a few hundred thousand characters
// (a broken or hostile email, a PDF text layer without line breaks) overflowed a worker
// thread's stack and killed the process on every redelivery of the document.
constexpr std::size_t kMaxLineChars = 2000;

std::vector<TextLine> capped(std::vector<TextLine> lines, std::vector<std::string>& warnings) {
    for (auto& line : lines) {
        if (line.text.size() <= kMaxLineChars) continue;
        const std::string where = line.source == "receipt" ? fmt::format("receipt page {} line {}", line.page + 1, line.index + 1)
                                                           : fmt::format("{} line {}", line.source, line.index + 1);
        warnings.push_back(fmt::format("{} is {} characters long; only its first {} were read", where, line.text.size(),
                                       kMaxLineChars));
        line.text.resize(kMaxLineChars);
        std::erase_if(line.word_confidences, [](const auto& w) { return w.end > kMaxLineChars; });
    }
    return lines;
}

}  // namespace

namespace {

// A lines reading (ocr.tesseract_lines): each line read again takes the place of the page
// reading's line, with its own words' confidences. Returns the {page, line} put in place.
std::set<std::pair<int, int>> put_line_readings(std::vector<TextLine>& lines, const nlohmann::json& line_readings) {
    std::set<std::pair<int, int>> replaced;
    for (const auto& r : line_readings) {
        // Written by transform.ocr_lines, but it travels with the document: a malformed entry
        // is left out (the page reading's line stands), not a failure of the receipt.
        if (!r.is_object() || !r.contains("text") || !r["text"].is_string() || !r.contains("page") || !r["page"].is_number_integer() ||
            !r.contains("line") || !r["line"].is_number_integer())
            continue;
        const std::string text = r.value("text", std::string());
        if (text.empty()) continue;  // nothing read: the page reading's line stands
        const int page = r.value("page", -1), index = r.value("line", -1);
        auto line = std::find_if(lines.begin(), lines.end(), [&](const TextLine& l) { return l.page == page && l.index == index; });
        if (line == lines.end()) continue;
        replaced.insert({page, index});
        line->text = text;
        if (r.contains("confidence") && r["confidence"].is_number()) line->ocr_confidence = r["confidence"].get<double>();
        line->word_confidences.clear();
        std::size_t cursor = 0;
        const nlohmann::json words = r.contains("words") && r["words"].is_array() ? r["words"] : nlohmann::json::array();
        for (const auto& w : words) {
            if (!w.is_object() || !w.contains("text") || !w["text"].is_string() || !w.contains("confidence") || !w["confidence"].is_number())
                continue;
            const std::string word = w["text"].get<std::string>();
            const std::size_t at = word.empty() ? std::string::npos : text.find(word, cursor);
            if (at == std::string::npos) continue;
            line->word_confidences.push_back({at, at + word.size(), w["confidence"].get<double>()});
            cursor = at + word.size();
        }
    }
    return replaced;
}

// The readings merged field by field: a whole-page reading has every field's say; a lines
// reading ("covers") only for the fields whose lines it read again. Counting it for the
// others would look like a second reading that failed to see them.
FieldMap merge_by_coverage(const nlohmann::json& readings, const ConfidenceModel& model, std::vector<std::string>& warnings) {
    std::vector<FieldMap> pages;
    for (const auto& x : readings)
        if (!x.contains("covers")) pages.push_back(ClaimExtractor::fields_from_json(x["fields"]));
    FieldMap merged = pages.size() == 1 ? pages.front() : ClaimExtractor::merge_readings(pages, warnings);
    std::set<std::string> covered;
    for (const auto& x : readings)
        if (x.contains("covers"))
            for (const auto& name : x["covers"]) covered.insert(name.get<std::string>());
    for (const auto& name : covered) {
        std::vector<FieldMap> some;
        for (const auto& x : readings) {
            if (x.contains("covers") && std::find(x["covers"].begin(), x["covers"].end(), name) == x["covers"].end()) continue;
            FieldMap one;
            if (auto all = ClaimExtractor::fields_from_json(x["fields"]); all.count(name)) one[name] = all[name];
            some.push_back(std::move(one));
        }
        // Mostly two readings: no majority, so the model judges each value on its own evidence.
        const auto judge = [&model](const std::string& field, const FieldValue& v) { return model.probability_of(field, v); };
        FieldMap field = some.size() == 1 ? some.front() : ClaimExtractor::merge_readings(some, warnings, judge);
        if (auto it = field.find(name); it != field.end()) merged[name] = it->second;
    }
    return merged;
}

}  // namespace

// Under the router's `medium` (0.75 by default): a claim read from a damaged or too small page,
// or from several pages that may be several receipts, goes to a person.
constexpr double kDamagedPageCap = 0.5;

ClaimResult ClaimsTransform::extract(const Document& doc, nlohmann::json* readings_out) const {
    std::vector<std::string> warnings;
    const int reading = reading_number(doc);
    std::vector<TextLine> lines = receipt_lines(doc);
    // A page the OCR read no letter or digit on (its lines, what the fields are read from) is
    // faint print, a blank page or a photo of something else: the reviewer's first look is at
    // the image, not at missing fields.
    for (const auto& page : doc.pages)
        if (page.ocr && std::all_of(page.ocr->lines.begin(), page.ocr->lines.end(), [](const OcrLine& l) { return normalize_label(l.text).empty(); }))
            warnings.push_back(fmt::format("page {}: the OCR read no text on it (faint print, a blank page or no receipt in the image): "
                                           "look at the image",
                                           page.index + 1));
    // A lines reading of this receipt: the fields it read again, on the page reading's lines.
    nlohmann::json covers;
    std::set<std::pair<int, int>> lines_read_again;
    if (auto lr = doc.fields.find("line_readings");
        lr != doc.fields.end() && lr->is_object() && lr->contains("reading") && lr->at("reading").is_number_integer() &&
        lr->at("reading").get<int>() == reading && lr->contains("lines") && lr->at("lines").is_array()) {
        lines_read_again = put_line_readings(lines, lr->at("lines"));
        covers = nlohmann::json::array();
        if (lr->contains("fields") && lr->at("fields").is_array())
            for (const auto& name : lr->at("fields"))
                if (name.is_string()) covers.push_back(name);
    }
    FieldMap receipt = extractor_->from_receipt(capped(std::move(lines), warnings), warnings);
    if (covers.is_array()) {
        // A lines reading speaks for a field through the lines it read: its value is kept
        // when it comes from such a line, or when the lines read again changed it (a total
        // rounded as another line shows it). The page reading's own value from a line not
        // read again is that reading's opinion a second time, and counted twice it outvotes
        // the others (train 304: the logo line "Ab sf" twice against DOMINO'S PIZZA once).
        std::vector<std::string> ignored;
        const FieldMap page_alone = extractor_->from_receipt(capped(receipt_lines(doc), ignored), ignored);
        const auto spoken_by_the_lines = [&](const std::string& name, const FieldValue& v) {
            const auto& p = v.provenance;
            if (p.contains("page") && p["page"].is_number_integer() && p.contains("line") && p["line"].is_number_integer() &&
                lines_read_again.count({p["page"].get<int>(), p["line"].get<int>()}) > 0)
                return true;
            const auto before = page_alone.find(name);
            return before == page_alone.end() || before->second.value != v.value;
        };
        // The reading has no say on those (out of `covers`); one that found no value on the
        // lines it read keeps its say, as a reading that did not see the field.
        std::set<std::string> the_page_again;
        std::erase_if(receipt, [&](const auto& f) {
            if (std::find(covers.begin(), covers.end(), f.first) == covers.end()) return true;
            if (spoken_by_the_lines(f.first, f.second)) return false;
            the_page_again.insert(f.first);
            return true;
        });
        nlohmann::json spoken_for = nlohmann::json::array();
        for (const auto& name : covers)
            if (!the_page_again.count(name.get<std::string>())) spoken_for.push_back(name);
        covers = std::move(spoken_for);
    }
    // Earlier OCR readings of this receipt (transform.claims_reread sent it back): merge.
    nlohmann::json readings = nlohmann::json::array();
    if (auto r = doc.fields.find("readings"); r != doc.fields.end() && r->is_array())
        for (const auto& x : *r)
            if (x.value("reading", 0) != reading) readings.push_back(x);
    nlohmann::json this_reading{{"reading", reading}, {"fields", ClaimExtractor::fields_to_json(receipt)}};
    if (covers.is_array()) this_reading["covers"] = covers;
    readings.push_back(std::move(this_reading));
    if (readings.size() > 1) receipt = merge_by_coverage(readings, *model_, warnings);
    if (readings_out) *readings_out = std::move(readings);
    // The readings above keep the extractor's confidence (the next merge reads it); the
    // claim gets the calibrated one.
    model_->apply(receipt);
    // A page decoded from a damaged file (transform.pdf_pages keeps one that is mostly
    // there): the total may sit in the part that is missing or garbled, and no check on the
    // rest can tell. Every field read from the receipt is held under the review threshold,
    // the ones the model calibrates and the others alike.
    // A page with too few pixels for its print (a thumbnail sent in place of the photo) is
    // read the same way: whatever the OCR made of it is held for a person.
    for (const auto& entry : doc.trace) {
        if (entry.event != kDamagedPageEvent && entry.event != kSmallPageEvent) continue;
        warnings.push_back(fmt::format("{}: check every field against the image", entry.detail));
        for (auto& [name, field] : receipt) {
            field.provenance["confidence_cap"] = std::min(field.cap().value_or(1.0), kDamagedPageCap);
            field.confidence = std::min(field.confidence, kDamagedPageCap);
        }
    }
    // A file of several pages whose total, date and shop come from different pages: two
    // receipts in one file (a two-page TIFF, a PDF of two scans) were read as one claim, the
    // total of one and the date of the other, and booked. A long receipt scanned in two parts
    // looks the same; either way a person checks it against the images.
    if (doc.pages.size() > 1) {
        std::map<int, std::vector<std::string>> by_page;
        for (const char* name : {"total_amount", "service_date", "provider_name"})
            if (auto f = receipt.find(name); f != receipt.end() && f->second.provenance.contains("page") &&
                                              f->second.provenance["page"].is_number_integer())
                by_page[f->second.provenance["page"].get<int>()].push_back(name);
        if (by_page.size() > 1) {
            std::string where;
            for (const auto& [page, names] : by_page)
                for (const auto& name : names) where += fmt::format("{}{} on page {}", where.empty() ? "" : ", ", name, page + 1);
            warnings.push_back(fmt::format("the claim's fields come from different pages ({}): if the file holds more than one "
                                           "receipt, each needs a claim of its own; check them against the images",
                                           where));
            for (auto& [name, field] : receipt) {
                field.provenance["confidence_cap"] = std::min(field.cap().value_or(1.0), kDamagedPageCap);
                field.confidence = std::min(field.confidence, kDamagedPageCap);
            }
        }
    }
    FieldMap email;
    if (use_email_) email = extractor_->from_email(capped(email_lines(doc), warnings), email_context(doc), warnings);
    return extractor_->combine(std::move(receipt), std::move(email), std::move(warnings));
}

void ClaimsTransform::process(const DocumentPtr& input, Outputs& out) {
    if (input->pages.empty() && !input->attributes.count("body_text"))
        throw BadInput("no pages and no email text to read claim fields from (is an ocr node before this one?)");
    nlohmann::json readings;
    ClaimResult result = extract(*input, &readings);
    auto doc = std::make_shared<Document>(*input);
    // What each OCR reading of the receipt said, for a later reading to merge with (see
    // transform.claims_reread) and for a reviewer to see; email-only documents have none.
    if (!input->pages.empty()) doc->fields["readings"] = readings;
    nlohmann::json j = result.to_json();
    for (auto& [key, value] : j.items()) doc->fields[key] = value;
    ctx_.metrics().observe("claim_confidence", result.confidence);
    if (!result.missing.empty()) ctx_.metrics().increment("claims_missing_required_total");
    out.emit(std::move(doc));
}

std::map<std::string, std::string> ClaimsTransform::check_fields(const nlohmann::json& values) const {
    return check_claim_corrections(values);
}

nlohmann::json ClaimsTransform::normalize_fields(const nlohmann::json& values) const { return normalize_claim_corrections(values); }

}  // namespace docpipe::claims
