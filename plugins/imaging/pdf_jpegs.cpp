#include "pdf_jpegs.hpp"

// Nothing here uses qpdf's old PointerHolder: its headers then need not define it (and do
// not warn that a program has not said so).
#define POINTERHOLDER_TRANSITION 4
#include <qpdf/Buffer.hh>
#include <qpdf/Constants.h>
#include <qpdf/QPDFAnnotationObjectHelper.hh>
#include <qpdf/Pipeline.hh>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFObjGen.hh>
#include <qpdf/QPDFObjectHandle.hh>
#include <qpdf/QPDFPageDocumentHelper.hh>
#include <qpdf/QPDFPageObjectHelper.hh>

#include <algorithm>
#include <exception>
#include <memory>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include <fmt/core.h>

namespace docpipe::imaging {

namespace {

// A stream whose filter is DCTDecode alone ("/DCTDecode" or "[/DCTDecode]"): its stored
// bytes are a JPEG file. One behind another filter (Flate, then DCT) is left to poppler.
bool jpeg_only(QPDFObjectHandle& stream) {
    QPDFObjectHandle filter = stream.getDict().getKey("/Filter");
    if (filter.isName()) return filter.getName() == "/DCTDecode";
    if (filter.isArray() && filter.getArrayNItems() == 1) {
        QPDFObjectHandle only = filter.getArrayItem(0);
        return only.isName() && only.getName() == "/DCTDecode";
    }
    return false;
}

// A page's (or form's) decoded content, kept up to kMaxContentBytes: past that the rest is
// dropped and `overflow` set, so a content stream that inflates to gigabytes costs time
// but no memory (poppler must inflate it too, to draw the page).
constexpr std::size_t kMaxContentBytes = 32u << 20;

class ContentCollector : public Pipeline {
  public:
    ContentCollector() : Pipeline("content", nullptr) {}
    void write(unsigned char const* data, size_t len) override {
        if (overflow || text.size() + len > kMaxContentBytes) {
            overflow = true;
            return;
        }
        text.append(reinterpret_cast<const char*>(data), len);
    }
    void finish() override {}
    std::string text;
    bool overflow = false;
};

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\0'; }
bool is_delimiter(char c) { return std::string_view("()<>[]{}/%").find(c) != std::string_view::npos; }

// What a content stream draws: the names before each `Do` operator ("/Im0 Do"), and its
// inline images (BI ... ID data EI) whose only filter is DCT, as the stored bytes.
struct ContentDraws {
    std::vector<std::string> xobjects;
    std::vector<std::pair<int, std::string>> inline_jpegs;  // the inline image's number in the stream (from 1), its bytes
};

bool is_token_end(const std::string& content, std::size_t at) {
    return at >= content.size() || is_space(content[at]) || is_delimiter(content[at]);
}

// Where the data of an inline image that starts at `data` ends: before the "EI" operator
// after it, an "EI" between white space. For a JPEG, the first such "EI" that follows its
// end marker (FF D9), so that "EI" inside the compressed bytes is not taken for the end; when
// none of the next kEndCandidates does (a JPEG cut short), the first "EI", as poppler finds
// it. The bound keeps a content stream of many inline images lacking an end marker from
// being searched to its end once per image.
constexpr int kEndCandidates = 16;

std::size_t inline_data_end(const std::string& content, std::size_t data, bool jpeg) {
    std::size_t first = std::string::npos;
    int candidates = 0;
    for (std::size_t k = data; k + 2 < content.size(); ++k) {
        if (!is_space(content[k]) || content[k + 1] != 'E' || content[k + 2] != 'I' || !is_token_end(content, k + 3)) continue;
        if (!jpeg) return k;
        if (first == std::string::npos) first = k;
        std::size_t end = k;  // the data's end, white space before "EI" left out
        while (end > data && is_space(content[end - 1])) --end;
        if (end >= data + 2 && content[end - 2] == '\xFF' && content[end - 1] == '\xD9') return end;
        if (++candidates == kEndCandidates) break;
    }
    return first == std::string::npos ? content.size() : first;
}

// A light tokenizer: comments, literal and hex strings and inline image data are stepped
// over, so text shown on the page is not taken for an operator.
ContentDraws content_draws(const std::string& content) {
    ContentDraws draws;
    std::string last_name;  // the token before, when it was a name
    bool in_inline_dictionary = false;  // between BI and ID
    bool inline_is_jpeg = false;
    std::string inline_key;  // the key the next value belongs to, in an inline image's dictionary
    int filters_in_array = -1;  // inside the array of its filters: how many so far
    int inline_images = 0;
    for (std::size_t k = 0; k < content.size();) {
        const char c = content[k];
        if (is_space(c)) {
            ++k;
        } else if (c == '%') {
            while (k < content.size() && content[k] != '\n' && content[k] != '\r') ++k;
        } else if (c == '(') {
            int depth = 0;
            for (; k < content.size(); ++k) {
                if (content[k] == '\\') ++k;
                else if (content[k] == '(') ++depth;
                else if (content[k] == ')' && --depth == 0) break;
            }
            ++k;
            last_name.clear();
        } else if (c == '<' && k + 1 < content.size() && content[k + 1] != '<') {
            k = content.find('>', k);
            k = k == std::string::npos ? content.size() : k + 1;
            last_name.clear();
        } else if (c == '/') {
            std::size_t end = k + 1;
            while (end < content.size() && !is_space(content[end]) && !is_delimiter(content[end])) ++end;
            last_name = content.substr(k, end - k);
            if (in_inline_dictionary) {
                // The filter, abbreviated or not: a name, or an array of them.
                const bool dct = last_name == "/DCT" || last_name == "/DCTDecode";
                if (filters_in_array >= 0) {
                    inline_is_jpeg = ++filters_in_array == 1 && dct;
                } else if (inline_key == "/F" || inline_key == "/Filter") {
                    inline_is_jpeg = dct;
                    inline_key.clear();
                } else {
                    inline_key = last_name;
                }
            }
            k = end;
        } else if (is_delimiter(c)) {
            if (in_inline_dictionary) {
                if (c == '[' && (inline_key == "/F" || inline_key == "/Filter")) {
                    filters_in_array = 0;
                } else if (c == ']' && filters_in_array >= 0) {
                    inline_is_jpeg = inline_is_jpeg && filters_in_array == 1;  // DCT behind another filter is left to poppler
                    filters_in_array = -1;
                }
                inline_key.clear();
            }
            ++k;
            last_name.clear();
        } else {
            std::size_t end = k;
            while (end < content.size() && !is_space(content[end]) && !is_delimiter(content[end])) ++end;
            const std::string_view token(content.data() + k, end - k);
            if (token == "Do" && !last_name.empty()) {
                draws.xobjects.push_back(last_name);
            } else if (token == "BI") {
                in_inline_dictionary = true;
                inline_is_jpeg = false;
                inline_key.clear();
                filters_in_array = -1;
            } else if (token == "ID" && in_inline_dictionary) {
                // One white-space byte, then the data up to "EI".
                in_inline_dictionary = false;
                ++inline_images;
                const std::size_t data = std::min(end + 1, content.size());
                const std::size_t data_end = inline_data_end(content, data, inline_is_jpeg);
                if (inline_is_jpeg) draws.inline_jpegs.emplace_back(inline_images, content.substr(data, data_end - data));
                end = data_end;
            } else if (in_inline_dictionary) {
                inline_key.clear();  // a number or a boolean: the value of the key before it
            }
            last_name.clear();
            k = end;
        }
    }
    return draws;
}

// Forms drawn inside forms are followed this deep (a real page nests two or three).
constexpr int kMaxFormDepth = 8;

// An image is read once however many pages draw it: an image or soft-mask stream by its
// object, an inline image by the object whose content holds it and its number there.
using ImageKey = std::pair<QPDFObjGen, int>;

struct PageWalk {
    PdfJpegs& out;
    std::map<ImageKey, std::size_t>& seen;
    std::size_t file_size;
    std::vector<std::size_t>& on_page;
    std::vector<std::string>& names_on_page;
    std::set<QPDFObjGen> forms_entered;
    bool incomplete = false;  // a content stream too large, or a form nested too deep

    // The images drawn by `owner` (a page, a form XObject or an annotation's appearance) and
    // the forms it draws. `whose` names the owner for the page's notes: "its " for the page,
    // "its form /Fm0's " for a form it draws.
    void walk(QPDFPageObjectHelper owner, QPDFObjectHandle inherited_resources, int depth, const std::string& whose) {
        ContentCollector content;
        owner.pipeContents(&content);
        if (content.overflow) incomplete = true;
        const ContentDraws draws = content_draws(content.text);
        const QPDFObjGen owner_id = owner.getObjectHandle().getObjGen();
        for (const auto& [number, bytes] : draws.inline_jpegs)
            take_bytes(ImageKey{owner_id, number}, owner_id.isIndirect(), bytes.data(), bytes.size(),
                       fmt::format("{}inline image {}", whose, number));
        QPDFObjectHandle resources = owner.getAttribute("/Resources", false);
        if (!resources.isDictionary()) resources = inherited_resources;  // a form without its own
        if (!resources.isDictionary()) return;
        QPDFObjectHandle xobjects = resources.getKey("/XObject");
        if (!xobjects.isDictionary()) return;
        for (const std::string& name : draws.xobjects) {
            QPDFObjectHandle x = xobjects.getKey(name);
            if (!x.isStream()) continue;
            QPDFObjectHandle subtype = x.getDict().getKey("/Subtype");  // (qpdf 11: its getters are not const)
            if (subtype.isName() && subtype.getName() == "/Form") {
                if (depth >= kMaxFormDepth) {
                    incomplete = true;
                    continue;
                }
                if (x.getObjGen().isIndirect() && !forms_entered.insert(x.getObjGen()).second) continue;  // a loop, or drawn twice
                walk(QPDFPageObjectHelper(x), resources, depth + 1, fmt::format("{}form {}'s ", whose, name));
            } else if (subtype.isName() && subtype.getName() == "/Image") {
                const std::string image_name = fmt::format("{}image {}", whose, name);
                if (jpeg_only(x)) take(x, image_name);
                // Its soft mask, which says where the image shows: a damaged one leaves parts
                // of the image out, whatever the image's own filter.
                QPDFObjectHandle mask = x.getDict().getKey("/SMask");
                if (mask.isStream() && jpeg_only(mask)) take(mask, image_name + "'s soft mask");
            }
        }
    }

    // The appearances poppler draws with the page: each annotation's normal appearance (in its
    // current state), unless the annotation is hidden or not for the screen.
    void walk_annotations(QPDFPageObjectHelper& page) {
        int number = 0;
        for (QPDFAnnotationObjectHelper& annotation : page.getAnnotations()) {
            ++number;
            if (annotation.getFlags() & (an_hidden | an_no_view)) continue;
            QPDFObjectHandle appearance = annotation.getAppearanceStream("/N");
            if (!appearance.isStream()) continue;
            if (appearance.getObjGen().isIndirect() && !forms_entered.insert(appearance.getObjGen()).second) continue;
            // An appearance has its own resources: it does not inherit the page's.
            walk(QPDFPageObjectHelper(appearance), QPDFObjectHandle(), 1, fmt::format("its annotation {}'s ", number));
        }
    }

    void take(QPDFObjectHandle& image, const std::string& name) {
        const QPDFObjGen id = image.getObjGen();
        if (note_again(ImageKey{id, 0}, id.isIndirect(), name) || full()) return;
        // qpdf reads a stream no further than the file goes, whatever its /Length says.
        const std::shared_ptr<Buffer> stored = image.getRawStreamData();
        take_bytes(ImageKey{id, 0}, id.isIndirect(), reinterpret_cast<const char*>(stored->getBuffer()), stored->getSize(), name);
    }

    void take_bytes(const ImageKey& key, bool keyed, const char* bytes, std::size_t size, const std::string& name) {
        if (note_again(key, keyed, name) || full()) return;
        // A hostile file can point many image objects at one large run of bytes: what is
        // copied (and then decoded) stays within twice the file's size.
        if (out.copied_bytes + size > 2 * file_size) {
            ++out.unchecked;
            return;
        }
        out.copied_bytes += size;
        PdfJpeg jpeg;
        jpeg.bytes.assign(bytes, bytes + size);
        out.images.push_back(std::move(jpeg));
        if (keyed) seen.emplace(key, out.images.size() - 1);
        on_page.push_back(out.images.size() - 1);
        names_on_page.push_back(name);
    }

    // An image read before (on this page or another): noted on this page too, once.
    bool note_again(const ImageKey& key, bool keyed, const std::string& name) {
        auto it = seen.find(key);
        if (!keyed || it == seen.end()) return false;
        if (std::find(on_page.begin(), on_page.end(), it->second) == on_page.end()) {
            on_page.push_back(it->second);
            names_on_page.push_back(name);
        }
        return true;
    }

    bool full() {
        if (on_page.size() < kMaxJpegsPerPage) return false;
        ++out.unchecked;
        return true;
    }
};

}  // namespace

std::optional<PdfJpegs> pdf_jpegs(const std::uint8_t* data, std::size_t size, int expected_pages, std::string& why_not) {
    try {
        QPDF pdf;
        pdf.setSuppressWarnings(true);
        pdf.processMemoryFile("pdf", reinterpret_cast<const char*>(data), size);
        std::vector<QPDFPageObjectHelper> pages = QPDFPageDocumentHelper(pdf).getAllPages();
        if (static_cast<long long>(pages.size()) != expected_pages) {
            why_not = fmt::format("qpdf sees {} pages where poppler sees {}; the page images are not checked", pages.size(), expected_pages);
            return std::nullopt;
        }
        PdfJpegs out;
        std::map<ImageKey, std::size_t> seen;
        for (auto& page : pages) {
            std::vector<std::size_t>& on_page = out.pages.emplace_back();
            std::vector<std::string>& names = out.names.emplace_back();
            PageWalk walk{out, seen, size, on_page, names, {}};
            walk.walk(page, QPDFObjectHandle(), 0, "its ");
            walk.walk_annotations(page);
            if (walk.incomplete) ++out.unchecked;
        }
        return out;
    } catch (const std::exception& e) {
        why_not = fmt::format("qpdf cannot read the file's objects ({}); the page images are not checked", e.what());
        return std::nullopt;
    }
}

}  // namespace docpipe::imaging
