#include "admin/review_data.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include <fmt/core.h>

#include "admin/page_preview.hpp"
#include "docpipe/document.hpp"
#include "services.hpp"

namespace docpipe::core::admin {

using json = nlohmann::json;

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Letters, digits and the decimal point, lower case: "RM479.05," -> "rm479.05".
std::string normalise(std::string_view s) {
    std::string out;
    for (unsigned char c : s)
        if (std::isalnum(c) || c == '.') out += static_cast<char>(std::tolower(c));
    while (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

// The provenance entry that names a receipt line (page + line box), if any. Fused fields
// keep the receipt's provenance under "receipt" (and say which side won in "chosen").
const json* receipt_line(const json& provenance) {
    if (!provenance.is_object()) return nullptr;
    if (provenance.contains("box") && provenance.contains("page")) return &provenance;
    if (auto c = provenance.find("chosen"); c != provenance.end() && c->is_string()) {
        if (auto side = provenance.find(c->get<std::string>()); side != provenance.end())
            if (const json* hit = receipt_line(*side)) return hit;
    }
    if (auto r = provenance.find("receipt"); r != provenance.end()) return receipt_line(*r);
    return nullptr;
}

// The strings a field's value may be written as on the page.
std::vector<std::string> value_tokens(const json& field, const json& line) {
    std::vector<std::string> tokens;
    const json value = field.is_object() ? field.value("value", json()) : field;
    auto add_words = [&](const std::string& text) {
        std::string word;
        for (char c : text + " ") {
            if (std::isspace(static_cast<unsigned char>(c))) {
                if (auto n = normalise(word); n.size() >= 2) tokens.push_back(n);
                word.clear();
            } else {
                word += c;
            }
        }
    };
    if (value.is_number()) {
        const double v = value.get<double>();
        tokens.push_back(fmt::format("{:.2f}", v));
        if (v == std::floor(v)) tokens.push_back(fmt::format("{:.0f}", v));
    } else if (value.is_string()) {
        add_words(value.get<std::string>());
    }
    // A date read as "24/12/2024" is stored as 2024-12-24; the line says how it was written.
    if (const auto& p = field.is_object() ? field.value("provenance", json::object()) : json::object(); p.is_object()) {
        if (auto w = p.find("as_written"); w != p.end() && w->is_string()) add_words(w->get<std::string>());
    }
    (void)line;
    return tokens;
}

// Media types every browser shows in an <img>.
bool browser_image(const std::string& t) {
    return t == "image/jpeg" || t == "image/png" || t == "image/gif" || t == "image/webp" || t == "image/bmp";
}

json box_entry(int page, const json& box, const char* kind) {
    return {{"page", page}, {"x", box[0]}, {"y", box[1]}, {"width", box[2]}, {"height", box[3]}, {"kind", kind}};
}

bool is_box(const json& b) { return b.is_array() && b.size() == 4 && std::all_of(b.begin(), b.end(), [](const json& v) { return v.is_number(); }); }

json job_field_value(const Job& job, const char* name) {
    auto it = job.fields.find(name);
    if (it == job.fields.end()) return nullptr;
    return it->is_object() ? it->value("value", json()) : *it;
}

std::string provider_of(const Job& job) {
    const json v = job_field_value(job, "provider_name");
    return v.is_string() ? v.get<std::string>() : "";
}

}  // namespace

json field_boxes(const json& field, const json& pages) {
    json boxes = json::array();
    if (!field.is_object()) return boxes;
    const json provenance = field.value("provenance", json::object());  // receipt_line points into it
    const json* line = receipt_line(provenance);
    if (!line || !is_box(line->at("box")) || !line->at("page").is_number_integer()) return boxes;
    const int page = line->at("page").get<int>();
    const json& lb = line->at("box");
    const double lx = lb[0].get<double>(), ly = lb[1].get<double>(), lw = lb[2].get<double>(), lh = lb[3].get<double>();
    const auto tokens = value_tokens(field, *line);
    for (const auto& p : pages) {
        if (p.value("index", -1) != page) continue;
        const json words = p.contains("ocr") ? p["ocr"].value("words", json::array()) : json::array();
        for (const auto& w : words) {
            const json& b = w.value("box", json());
            if (!is_box(b)) continue;
            // The word's centre inside the line (a little slack for deskewed lines).
            const double cx = b[0].get<double>() + b[2].get<double>() / 2, cy = b[1].get<double>() + b[3].get<double>() / 2;
            const double slack = std::max(4.0, lh * 0.25);
            if (cx < lx - slack || cx > lx + lw + slack || cy < ly - slack || cy > ly + lh + slack) continue;
            const std::string n = normalise(w.value("text", ""));
            if (n.empty()) continue;
            const bool spells = std::any_of(tokens.begin(), tokens.end(), [&](const std::string& t) {
                return (n.find(t) != std::string::npos) || (n.size() >= 3 && t.find(n) != std::string::npos);
            });
            if (spells) boxes.push_back(box_entry(page, b, "words"));
        }
    }
    if (boxes.empty()) boxes.push_back(box_entry(page, lb, "line"));
    return boxes;
}

json review_item(Store& store, const Job& job) {
    json item{{"job", job.to_json()}, {"documents", json::array()}};
    const std::string prefix = "review/" + job.id + "/";
    auto keys = store.keys(prefix, 1000);
    std::sort(keys.begin(), keys.end());
    for (const auto& key : keys) {
        auto text = store.get(key);
        if (!text) continue;
        json record = json::parse(*text, nullptr, false);
        if (!record.is_object() || !record.contains("document")) continue;
        const json& doc = record["document"];
        const json& fields = doc.value("fields", json::object());
        const bool is_claim = fields.contains("claim") && fields["claim"].is_object();
        const json& claim = is_claim ? fields["claim"] : fields;
        const json pages_in = doc.value("pages", json::array());
        const json parts = doc.value("parts", json::array());
        const std::string name = parts.empty() || !parts[0].is_object() ? std::string() : parts[0].value("name", std::string());

        json pages = json::array();
        const auto image_parts = std::count_if(parts.begin(), parts.end(), [](const json& p) { return browser_image(p.value("media_type", "")); });
        const bool original_viewable = image_parts == 1 && pages_in.size() == 1;
        // The page rasters sink.review stored as PNGs (by page index), with their scale.
        const std::string doc_id = doc.value("id", "");
        std::map<int, json> previews;
        for (const auto& e : record.value("page_images", json::array()))
            if (e.is_object() && e.value("page", -1) >= 0) previews[e.value("page", -1)] = e;
        std::set<int> stored;
        if (!doc_id.empty() && doc_id.find('/') == std::string::npos) {
            const std::string page_prefix = review_page_prefix(job.id, doc_id);
            for (const auto& k : store.keys(page_prefix, 10000)) {
                try {
                    stored.insert(std::stoi(k.substr(page_prefix.size())));
                } catch (const std::exception&) {
                }
            }
        }
        for (const auto& p : pages_in) {
            const int index = p.value("index", 0);
            json entry{{"index", index},
                       {"width", p.value("width", 0)},
                       {"height", p.value("height", 0)},
                       {"words", p.contains("ocr") ? p["ocr"].value("words", json::array()).size() : 0},
                       {"has_image", stored.count(index) > 0 || original_viewable}};
            // What the image endpoint serves. Boxes are in raster pixels (width x height); the
            // PNG is the raster scaled by `scale`, so a viewer stretches it over the raster's size.
            if (stored.count(index)) {
                const json& e = previews.count(index) ? previews[index] : json::object();
                const std::string source = e.value("source", "raster");
                entry["image"] = {{"source", source}, {"width", e.value("width", json())}, {"height", e.value("height", json())},
                                  {"scale", e.value("scale", json())}};
                if (source == "pdf") {
                    // No raster and no OCR boxes (the text came from the PDF): the page is drawn
                    // at the rendered image's own size.
                    entry["width"] = e.value("width", 0);
                    entry["height"] = e.value("height", 0);
                }
            } else if (original_viewable) {
                entry["image"] = {{"source", "original"}};
            }
            pages.push_back(std::move(entry));
        }

        json out_fields = json::object();
        json conflicts = json::array();
        for (const auto& [field_name, f] : claim.items()) {
            if (!f.is_object() || !f.contains("value")) continue;
            json entry{{"value", f["value"]},
                       {"confidence", f.value("confidence", json())},
                       {"source", f.value("source", "")},
                       {"provenance", f.value("provenance", json::object())},
                       {"boxes", field_boxes(f, pages_in)}};
            out_fields[field_name] = std::move(entry);
            const json& prov = f.value("provenance", json::object());
            if (!prov.is_object()) continue;
            if (auto c = prov.find("conflict"); c != prov.end())
                conflicts.push_back({{"field", field_name}, {"kind", "receipt vs email"}, {"value", f["value"]}, {"other", *c}});
            if (auto a = prov.find("alternatives"); a != prov.end() && a->is_array() && !a->empty())
                conflicts.push_back({{"field", field_name}, {"kind", "competing values"}, {"value", f["value"]}, {"other", *a}});
            if (prov.contains("receipt") && prov.contains("email") && prov.contains("chosen")) {
                // The value that was not chosen: "vs chosen from the receipt" told a reviewer nothing.
                const std::string chosen = prov.value("chosen", std::string("receipt"));
                conflicts.push_back({{"field", field_name}, {"kind", "receipt vs email"}, {"value", f["value"]},
                                     {"other", prov.contains("not_chosen") ? prov["not_chosen"] : json("chosen from the " + chosen)},
                                     {"chosen", chosen}});
            }
        }
        const json attrs = doc.value("attributes", json::object());
        item["documents"].push_back({{"doc_id", doc.value("id", "")},
                                     {"name", name},
                                     {"reason", record.value("reason", "")},
                                     {"node", record.value("node", "")},
                                     {"confidence", fields.value("confidence", json())},
                                     {"confidence_level", fields.value("confidence_level", json())},
                                     {"fields", std::move(out_fields)},
                                     {"warnings", fields.value("warnings", json::array())},
                                     {"missing", fields.value("missing", json::array())},
                                     {"conflicts", std::move(conflicts)},
                                     {"subject", attrs.value("subject", "")},
                                     // transform.mime names it `from`; `sender` where a source set it
                                     {"sender", attrs.value("sender", attrs.value("from", std::string()))},
                                     // What else the email held that was not read (transform.mime): the claim may need it.
                                     {"skipped_attachments", attrs.value("skipped_attachments", std::string())},
                                     {"pages", std::move(pages)}});
    }
    return item;
}

std::optional<PageImage> page_image(Store& store, const std::string& job_id, const std::string& doc_id, int page) {
    // A doc id is a content hash; refuse anything that could step out of the job's prefix.
    if (doc_id.empty() || doc_id.find('/') != std::string::npos || job_id.find('/') != std::string::npos || page < 0) return std::nullopt;
    // The raster the OCR read, as sink.review stored it: any page of a PDF or TIFF too.
    if (auto png = store.get(review_page_key(job_id, doc_id, page))) return PageImage{"image/png", std::move(*png)};
    // Documents parked before page rasters were stored: the original, when a browser can show it.
    auto text = store.get("review/" + job_id + "/" + doc_id);
    if (!text) return std::nullopt;
    json record = json::parse(*text, nullptr, false);
    if (!record.is_object() || !record.contains("document")) return std::nullopt;
    Document doc = Document::from_json(record["document"]);
    if (doc.pages.size() > 1 || page != 0) return std::nullopt;  // one image part = one page
    std::optional<PageImage> found;
    for (const auto& part : doc.parts) {
        const auto& t = part.media_type;
        if (!browser_image(t)) continue;
        if (found) return std::nullopt;  // more than one: which is the page is not known
        found = PageImage{t, std::string(part.bytes->begin(), part.bytes->end())};
    }
    return found;
}

JobFilter parse_job_filter(const std::function<std::optional<std::string>(std::string_view)>& param, json& problems) {
    JobFilter f;
    auto number = [&](const char* name, double lo, double hi) -> std::optional<double> {
        auto v = param(name);
        if (!v || v->empty()) return std::nullopt;
        try {
            std::size_t used = 0;
            double d = std::stod(*v, &used);
            if (used == v->size() && d >= lo && d <= hi && std::isfinite(d)) return d;
        } catch (...) {
        }
        problems[name] = fmt::format("must be a number from {} to {}", lo, hi);
        return std::nullopt;
    };
    if (auto r = param("route"); r && !r->empty()) {
        if (*r == "high" || *r == "medium" || *r == "low") f.route = *r;
        else problems["route"] = "must be high, medium or low";
    }
    f.min_confidence = number("min_confidence", 0, 1);
    f.max_confidence = number("max_confidence", 0, 1);
    f.min_age_hours = number("min_age_hours", 0, 1e6);
    f.max_age_hours = number("max_age_hours", 0, 1e6);
    if (auto p = param("provider"); p && !p->empty()) f.provider = lower(*p);
    if (auto q = param("q"); q && !q->empty()) f.text = lower(*q);
    if (auto s = param("sort"); s && !s->empty()) {
        static const char* kSorts[] = {"created_at", "confidence", "provider", "amount", "updated_at"};
        const std::string key = (*s)[0] == '-' ? s->substr(1) : *s;
        if (*s == "asc") f.sort = "created_at";
        else if (*s == "desc") f.sort = "-created_at";
        else if (std::any_of(std::begin(kSorts), std::end(kSorts), [&](const char* k) { return key == k; })) f.sort = *s;
        else problems["sort"] = "must be created_at, confidence, provider, amount or updated_at, with a leading '-' for descending";
    }
    return f;
}

bool needs_scan(const JobFilter& f) {
    return f.route || f.min_confidence || f.max_confidence || f.provider || f.min_age_hours || f.max_age_hours || f.text ||
           (f.sort != "created_at" && f.sort != "-created_at");
}

FilteredJobs filter_jobs(Store& store, const JobQuery& base, const JobFilter& f, std::size_t limit, std::size_t offset,
                         std::int64_t now_ms, std::size_t cap) {
    std::vector<Job> matches;
    FilteredJobs out;
    JobQuery q = base;
    q.raw = false;
    q.limit = 500;
    q.newest_first = true;
    std::size_t seen = 0;
    auto keep = [&](const Job& j) {
        if (f.route && j.confidence_level != *f.route) return false;
        if (f.min_confidence && j.confidence < *f.min_confidence) return false;
        if (f.max_confidence && j.confidence > *f.max_confidence) return false;
        const double age_h = static_cast<double>(now_ms - j.created_ms) / 3'600'000.0;
        if (f.min_age_hours && age_h < *f.min_age_hours) return false;
        if (f.max_age_hours && age_h > *f.max_age_hours) return false;
        if (f.provider && lower(provider_of(j)).find(*f.provider) == std::string::npos) return false;
        if (f.text) {
            const std::string hay = lower(j.id + "\n" + j.root_id + "\n" + j.filename + "\n" + j.email_id + "\n" + provider_of(j) + "\n" +
                                          docpipe::json_text(Job::or_empty(j.references)) + "\n" + j.last_error + "\n" + j.status);
            if (hay.find(*f.text) == std::string::npos) return false;
        }
        return true;
    };
    for (q.offset = 0; seen < cap; q.offset += q.limit) {
        JobPage page = store.list_jobs(q);
        for (auto& j : page.jobs) {
            if (++seen > cap) {
                out.truncated = true;
                break;
            }
            if (keep(j)) matches.push_back(std::move(j));
        }
        if (page.jobs.size() < q.limit) break;
    }
    const bool desc = !f.sort.empty() && f.sort[0] == '-';
    const std::string key = desc ? f.sort.substr(1) : f.sort;
    auto amount = [](const Job& j) {
        const json v = job_field_value(j, "total_amount");
        return v.is_number() ? v.get<double>() : -1.0;
    };
    std::stable_sort(matches.begin(), matches.end(), [&](const Job& a, const Job& b) {
        auto cmp = [&]() -> int {
            if (key == "confidence") return a.confidence < b.confidence ? -1 : a.confidence > b.confidence ? 1 : 0;
            if (key == "amount") return amount(a) < amount(b) ? -1 : amount(a) > amount(b) ? 1 : 0;
            if (key == "provider") return lower(provider_of(a)).compare(lower(provider_of(b)));
            if (key == "updated_at") return a.updated_ms < b.updated_ms ? -1 : a.updated_ms > b.updated_ms ? 1 : 0;
            return a.created_ms < b.created_ms ? -1 : a.created_ms > b.created_ms ? 1 : 0;
        }();
        if (cmp == 0) return a.id < b.id;
        return desc ? cmp > 0 : cmp < 0;
    });
    out.total = matches.size();
    for (std::size_t i = offset; i < matches.size() && i < offset + limit; ++i) out.jobs.push_back(matches[i].to_json());
    return out;
}

void append_audit(Store& store, const std::string& job_id, json entry, std::int64_t now_ms) {
    unsigned char r[4];
    RAND_bytes(r, sizeof r);
    entry["at_ms"] = now_ms;
    entry["at"] = iso8601(std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms)));
    // Zero-padded time first: the keys sort in the order the actions happened.
    const std::string key = fmt::format("audit/{}/{:015d}-{:02x}{:02x}{:02x}{:02x}", job_id, now_ms, r[0], r[1], r[2], r[3]);
    store.put(key, docpipe::json_text(entry));
}

json read_audit(Store& store, const std::string& job_id) {
    auto keys = store.keys("audit/" + job_id + "/", 1000);
    std::sort(keys.begin(), keys.end());
    json out = json::array();
    for (const auto& key : keys)
        if (auto text = store.get(key)) {
            json e = json::parse(*text, nullptr, false);
            if (e.is_object()) out.push_back(std::move(e));
        }
    return out;
}

json field_changes(const json& job_fields, const json& corrections) {
    json changes = json::object();
    if (!corrections.is_object()) return changes;
    for (const auto& [name, to] : corrections.items()) {
        json from = nullptr;
        if (auto it = job_fields.find(name); it != job_fields.end()) from = it->is_object() ? it->value("value", json()) : *it;
        changes[name] = {{"from", from}, {"to", to}};
    }
    return changes;
}

}  // namespace docpipe::core::admin
