#include "pdf_jpegs.hpp"

// Nothing here uses qpdf's old PointerHolder: its headers then need not define it (and do
// not warn that a program has not said so).
#define POINTERHOLDER_TRANSITION 4
#include <qpdf/Buffer.hh>
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

// The names before each `Do` operator in a content stream ("/Im0 Do"): the XObjects it
// draws. A light tokenizer: comments, literal and hex strings are stepped over, so text
// shown on the page is not taken for an operator; inline image data may rarely produce a
// stray name, which only means one more image is checked.
std::vector<std::string> drawn_names(const std::string& content) {
    std::vector<std::string> names;
    std::string last_name;  // the token before, when it was a name
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
            k = end;
        } else if (is_delimiter(c)) {
            ++k;
            last_name.clear();
        } else {
            std::size_t end = k;
            while (end < content.size() && !is_space(content[end]) && !is_delimiter(content[end])) ++end;
            if (content.compare(k, end - k, "Do") == 0 && !last_name.empty()) names.push_back(last_name);
            last_name.clear();
            k = end;
        }
    }
    return names;
}

// Forms drawn inside forms are followed this deep (a real page nests two or three).
constexpr int kMaxFormDepth = 8;

struct PageWalk {
    PdfJpegs& out;
    std::map<QPDFObjGen, std::size_t>& seen;
    std::size_t file_size;
    std::vector<std::size_t>& on_page;
    std::vector<std::string>& names_on_page;
    std::set<QPDFObjGen> forms_entered;
    bool incomplete = false;  // a content stream too large, or a form nested too deep

    // The images drawn by `owner` (a page or a form XObject) and the forms it draws.
    void walk(QPDFPageObjectHelper owner, QPDFObjectHandle inherited_resources, int depth) {
        ContentCollector content;
        owner.pipeContents(&content);
        if (content.overflow) incomplete = true;
        QPDFObjectHandle resources = owner.getAttribute("/Resources", false);
        if (!resources.isDictionary()) resources = inherited_resources;  // a form without its own
        if (!resources.isDictionary()) return;
        QPDFObjectHandle xobjects = resources.getKey("/XObject");
        if (!xobjects.isDictionary()) return;
        for (const std::string& name : drawn_names(content.text)) {
            QPDFObjectHandle x = xobjects.getKey(name);
            if (!x.isStream()) continue;
            QPDFObjectHandle subtype = x.getDict().getKey("/Subtype");  // (qpdf 11: its getters are not const)
            if (subtype.isName() && subtype.getName() == "/Form") {
                if (depth >= kMaxFormDepth) {
                    incomplete = true;
                    continue;
                }
                if (x.getObjGen().isIndirect() && !forms_entered.insert(x.getObjGen()).second) continue;  // a loop, or drawn twice
                walk(QPDFPageObjectHelper(x), resources, depth + 1);
            } else if (subtype.isName() && subtype.getName() == "/Image" && jpeg_only(x)) {
                take(x, name);
            }
        }
    }

    void take(QPDFObjectHandle& image, const std::string& name) {
        const QPDFObjGen id = image.getObjGen();
        if (auto it = seen.find(id); it != seen.end() && id.isIndirect()) {
            if (std::find(on_page.begin(), on_page.end(), it->second) == on_page.end()) {
                on_page.push_back(it->second);
                names_on_page.push_back(name);
            }
            return;
        }
        if (on_page.size() >= kMaxJpegsPerPage) {
            ++out.unchecked;
            return;
        }
        // A hostile file can point many image objects at one large run of bytes: what is
        // copied (and then decoded) stays within twice the file's size. qpdf reads a stream
        // no further than the file goes, whatever its /Length says.
        const std::shared_ptr<Buffer> stored = image.getRawStreamData();
        if (out.copied_bytes + stored->getSize() > 2 * file_size) {
            ++out.unchecked;
            return;
        }
        out.copied_bytes += stored->getSize();
        PdfJpeg jpeg;
        jpeg.bytes.assign(stored->getBuffer(), stored->getBuffer() + stored->getSize());
        out.images.push_back(std::move(jpeg));
        if (id.isIndirect()) seen.emplace(id, out.images.size() - 1);
        on_page.push_back(out.images.size() - 1);
        names_on_page.push_back(name);
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
        std::map<QPDFObjGen, std::size_t> seen;  // an image drawn on several pages is read once
        for (auto& page : pages) {
            std::vector<std::size_t>& on_page = out.pages.emplace_back();
            std::vector<std::string>& names = out.names.emplace_back();
            PageWalk walk{out, seen, size, on_page, names, {}};
            walk.walk(page, QPDFObjectHandle(), 0);
            if (walk.incomplete) ++out.unchecked;
        }
        return out;
    } catch (const std::exception& e) {
        why_not = fmt::format("qpdf cannot read the file's objects ({}); the page images are not checked", e.what());
        return std::nullopt;
    }
}

}  // namespace docpipe::imaging
