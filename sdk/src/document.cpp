#include "docpipe/document.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>

#include <openssl/evp.h>

namespace docpipe {

namespace {

std::string hex_sha256_prefix(const std::uint8_t* data, std::size_t size, std::size_t hex_digits) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed (OpenSSL EVP_Digest)");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length && out.size() < hex_digits; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 0xF]);
    }
    return out;
}

std::string base64_encode(const Bytes& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

Bytes base64_decode(const std::string& text) {
    Bytes out(3 * text.size() / 4 + 3);
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) throw std::invalid_argument("parts[].base64 is not valid base64");
    std::size_t padding = 0;
    if (!text.empty() && text.back() == '=') ++padding;
    if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
    out.resize(static_cast<std::size_t>(n) - padding);
    return out;
}

nlohmann::json box_json(const Box& b) { return {b.x, b.y, b.width, b.height}; }

}  // namespace

std::string Document::content_id(const std::uint8_t* data, std::size_t size) {
    return hex_sha256_prefix(data, size, 24);
}

std::string Document::content_id(std::string_view data) {
    return content_id(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
}

Document Document::make_child(std::string_view discriminator) const {
    Document child;
    child.id = content_id(id + "/" + std::string(discriminator));
    child.parent_id = id;
    child.attributes = attributes;
    return child;
}

Document Document::from_bytes(std::string name, std::string media_type, Bytes bytes) {
    Document doc;
    doc.id = content_id(bytes.data(), bytes.size());
    doc.parts.push_back(Part{std::move(name), std::move(media_type), std::make_shared<const Bytes>(std::move(bytes))});
    return doc;
}

nlohmann::json Document::to_json(bool include_bytes) const {
    nlohmann::json j;
    j["id"] = id;
    if (!parent_id.empty()) j["parent_id"] = parent_id;
    j["attributes"] = attributes;
    nlohmann::json parts_json = nlohmann::json::array();
    for (const auto& p : parts) {
        nlohmann::json pj{{"name", p.name}, {"media_type", p.media_type}, {"size", p.bytes ? p.bytes->size() : 0}};
        if (include_bytes && p.bytes) pj["base64"] = base64_encode(*p.bytes);
        parts_json.push_back(std::move(pj));
    }
    j["parts"] = std::move(parts_json);
    nlohmann::json pages_json = nlohmann::json::array();
    for (const auto& pg : pages) {
        nlohmann::json pj{{"index", pg.index}, {"width", pg.image.width}, {"height", pg.image.height}, {"dpi", pg.image.dpi}};
        if (!pg.text_layer.empty()) pj["text_layer"] = pg.text_layer;
        if (pg.ocr) {
            nlohmann::json words = nlohmann::json::array();
            for (const auto& w : pg.ocr->words)
                words.push_back({{"text", w.text}, {"box", box_json(w.box)}, {"confidence", w.confidence}, {"line", w.line}});
            nlohmann::json lines = nlohmann::json::array();
            for (const auto& l : pg.ocr->lines)
                lines.push_back({{"text", l.text}, {"box", box_json(l.box)}, {"confidence", l.confidence}});
            pj["ocr"] = {{"engine", pg.ocr->engine}, {"text", pg.ocr->text}, {"mean_confidence", pg.ocr->mean_confidence},
                         {"lines", std::move(lines)}, {"words", std::move(words)}};
        }
        pages_json.push_back(std::move(pj));
    }
    j["pages"] = std::move(pages_json);
    j["fields"] = fields;
    nlohmann::json trace_json = nlohmann::json::array();
    for (const auto& t : trace)
        trace_json.push_back({{"node", t.node}, {"event", t.event}, {"millis", t.millis}, {"detail", t.detail}});
    j["trace"] = std::move(trace_json);
    return j;
}

Document Document::from_json(const nlohmann::json& j) {
    auto require = [&](const nlohmann::json& obj, const char* key) -> const nlohmann::json& {
        if (!obj.is_object() || !obj.contains(key)) throw std::invalid_argument(std::string("document JSON lacks '") + key + "'");
        return obj.at(key);
    };
    Document d;
    d.id = require(j, "id").get<std::string>();
    d.parent_id = j.value("parent_id", "");
    if (j.contains("attributes")) d.attributes = j.at("attributes").get<std::map<std::string, std::string>>();
    if (j.contains("parts")) {
        for (const auto& pj : j.at("parts")) {
            Part p;
            p.name = require(pj, "name").get<std::string>();
            p.media_type = pj.value("media_type", "application/octet-stream");
            p.bytes = std::make_shared<const Bytes>(pj.contains("base64") ? base64_decode(pj.at("base64").get<std::string>()) : Bytes{});
            d.parts.push_back(std::move(p));
        }
    }
    if (j.contains("pages")) {
        // Page pixels are not serialised; the text layer and the OCR result are, so a
        // document parked after OCR (dead letter, review) comes back with what was read.
        auto box_of = [](const nlohmann::json& b) {
            Box box;
            if (b.is_array() && b.size() == 4) box = Box{b[0].get<int>(), b[1].get<int>(), b[2].get<int>(), b[3].get<int>()};
            return box;
        };
        for (const auto& pj : j.at("pages")) {
            Page pg;
            pg.index = pj.value("index", 0);
            pg.image.width = pj.value("width", 0);
            pg.image.height = pj.value("height", 0);
            pg.image.dpi = pj.value("dpi", 0);
            pg.text_layer = pj.value("text_layer", "");
            if (pj.contains("ocr")) {
                const auto& oj = pj.at("ocr");
                OcrResult r;
                r.engine = oj.value("engine", "");
                r.text = oj.value("text", "");
                r.mean_confidence = oj.value("mean_confidence", 0.0f);
                for (const auto& lj : oj.value("lines", nlohmann::json::array()))
                    r.lines.push_back({lj.value("text", ""), box_of(lj.value("box", nlohmann::json())), lj.value("confidence", 0.0f)});
                for (const auto& wj : oj.value("words", nlohmann::json::array()))
                    r.words.push_back({wj.value("text", ""), box_of(wj.value("box", nlohmann::json())), wj.value("confidence", 0.0f),
                                       wj.value("line", -1)});
                pg.ocr = std::move(r);
            }
            d.pages.push_back(std::move(pg));
        }
    }
    if (j.contains("fields")) d.fields = j.at("fields");
    if (j.contains("trace"))
        for (const auto& t : j.at("trace"))
            d.trace.push_back({t.value("node", ""), t.value("event", ""), t.value("millis", 0.0), t.value("detail", "")});
    return d;
}

std::string json_text(const nlohmann::json& value, int indent) {
    return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string json_differences(const nlohmann::json& before, const nlohmann::json& after, std::string_view before_label,
                             std::string_view after_label) {
    static const nlohmann::json none;
    const auto member = [](const nlohmann::json& side, const std::string& name) -> const nlohmann::json& {
        if (!side.is_object()) return none;
        const auto it = side.find(name);
        return it == side.end() ? none : *it;
    };
    const auto shown = [](const nlohmann::json& value) {
        if (value.is_null()) return std::string("(none)");
        if (value.is_string()) return "'" + value.get<std::string>() + "'";
        return json_text(value);
    };
    std::set<std::string> names;
    for (const auto* side : {&before, &after})
        if (side->is_object())
            for (const auto& [name, value] : side->items()) names.insert(name);
    std::string text;
    for (const auto& name : names) {
        const auto& was = member(before, name);
        const auto& is = member(after, name);
        if (was == is) continue;
        if (!text.empty()) text += "; ";
        text += name + ": " + shown(was) + " " + std::string(before_label) + ", " + shown(is) + " " + std::string(after_label);
    }
    return text;
}

std::string media_type_for(std::string_view filename) {
    auto dot = filename.rfind('.');
    if (dot == std::string_view::npos) return "application/octet-stream";
    std::string ext(filename.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    static const std::pair<const char*, const char*> kTypes[] = {
        {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"}, {"jfif", "image/jpeg"}, {"jpe", "image/jpeg"}, {"png", "image/png"}, {"tif", "image/tiff"},
        {"tiff", "image/tiff"}, {"bmp", "image/bmp"}, {"gif", "image/gif"}, {"webp", "image/webp"},
        {"heic", "image/heic"}, {"heif", "image/heif"}, {"avif", "image/avif"},
        {"pdf", "application/pdf"}, {"eml", "message/rfc822"}, {"txt", "text/plain"}, {"json", "application/json"},
        {"html", "text/html"}, {"htm", "text/html"}};
    for (const auto& [e, type] : kTypes)
        if (ext == e) return type;
    return "application/octet-stream";
}

}  // namespace docpipe
