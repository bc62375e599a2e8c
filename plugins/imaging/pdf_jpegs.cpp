#include "pdf_jpegs.hpp"

#include "pdf_content.hpp"

// Nothing here uses qpdf's old PointerHolder: its headers then need not define it (and do
// not warn that a program has not said so).
#define POINTERHOLDER_TRANSITION 4
#include <qpdf/Buffer.hh>
#include <qpdf/Constants.h>
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

// Forms drawn inside forms are followed this deep (a real page nests two or three).
constexpr int kMaxFormDepth = 8;

// Optional content (layers) switched off in the document's default view: poppler does not
// draw what it holds, so it is not checked.
class OptionalContent {
  public:
    explicit OptionalContent(QPDF& pdf) {
        QPDFObjectHandle view = pdf.getRoot().getKey("/OCProperties").getKey("/D");
        if (!view.isDictionary()) return;
        QPDFObjectHandle base = view.getKey("/BaseState");
        base_off_ = base.isName() && base.getName() == "/OFF";
        read_groups(view.getKey("/ON"), on_);
        read_groups(view.getKey("/OFF"), off_);
    }

    // Whether `group`, an optional content group or membership dictionary (an /OC value),
    // is hidden. A membership dictionary's /VE expression is not evaluated: its /P policy is.
    bool hidden(QPDFObjectHandle group) const {
        if (!group.isDictionary()) return false;
        QPDFObjectHandle type = group.getKey("/Type");
        if (!(type.isName() && type.getName() == "/OCMD")) return off(group);
        std::vector<QPDFObjectHandle> groups;
        QPDFObjectHandle listed = group.getKey("/OCGs");
        if (listed.isDictionary()) groups.push_back(listed);
        if (listed.isArray())
            for (int k = 0; k < listed.getArrayNItems() && k < 256; ++k)
                if (QPDFObjectHandle g = listed.getArrayItem(k); g.isDictionary()) groups.push_back(g);
        if (groups.empty()) return false;
        const auto count_off = static_cast<std::size_t>(std::count_if(groups.begin(), groups.end(), [&](auto& g) { return off(g); }));
        QPDFObjectHandle policy = group.getKey("/P");
        const std::string p = policy.isName() ? policy.getName() : "/AnyOn";
        if (p == "/AllOn") return count_off > 0;
        if (p == "/AnyOff") return count_off == 0;
        if (p == "/AllOff") return count_off < groups.size();
        return count_off == groups.size();  // /AnyOn
    }

  private:
    static void read_groups(QPDFObjectHandle list, std::set<QPDFObjGen>& into) {
        if (!list.isArray()) return;
        for (int k = 0; k < list.getArrayNItems() && k < 4096; ++k) into.insert(list.getArrayItem(k).getObjGen());
    }
    bool off(QPDFObjectHandle& group) const {
        const QPDFObjGen id = group.getObjGen();
        return base_off_ ? on_.count(id) == 0 : off_.count(id) > 0;
    }
    bool base_off_ = false;
    std::set<QPDFObjGen> on_, off_;
};

// An image is read once however many pages draw it: an image or soft-mask stream by its
// object, an inline image by the object whose content holds it and its number there.
using ImageKey = std::pair<QPDFObjGen, int>;

struct PageWalk {
    PdfJpegs& out;
    std::map<ImageKey, std::size_t>& seen;
    const OptionalContent& optional_content;
    std::size_t file_size;
    std::vector<std::size_t>& on_page;
    std::vector<std::string>& names_on_page;
    // The forms entered on this page, each with the object whose resources it borrows (a
    // form without its own draws another image /Im0 in each place it is drawn from).
    std::set<std::pair<QPDFObjGen, QPDFObjGen>> forms_entered;
    bool incomplete = false;  // a content stream too large, or a form nested too deep

    // The images drawn by `owner` (a page, a form XObject or an annotation's appearance) and
    // the forms it draws. `whose` names the owner for the page's notes: "its " for the page,
    // "its form /Fm0's " for a form it draws.
    void walk(QPDFPageObjectHelper owner, QPDFObjectHandle inherited_resources, int depth, const std::string& whose) {
        ContentDraws draws;
        {
            ContentCollector content;
            owner.pipeContents(&content);
            if (content.overflow) incomplete = true;
            draws = content_draws(content.text);
        }  // the content's text is let go before the forms it draws are read
        QPDFObjectHandle resources = owner.getAttribute("/Resources", false);
        if (!resources.isDictionary()) resources = inherited_resources;  // a form without its own
        const QPDFObjGen owner_id = owner.getObjectHandle().getObjGen();
        for (ContentInlineJpeg& jpeg : draws.inline_jpegs)
            if (shown(jpeg, resources))
                take_bytes(ImageKey{owner_id, jpeg.number}, owner_id.isIndirect(), jpeg.bytes.data(), jpeg.bytes.size(),
                           fmt::format("{}inline image {}", whose, jpeg.number));
        draws.inline_jpegs.clear();
        if (!resources.isDictionary()) return;
        QPDFObjectHandle xobjects = resources.getKey("/XObject");
        if (!xobjects.isDictionary()) return;
        for (const ContentXObject& drawn : draws.xobjects) {
            QPDFObjectHandle x = xobjects.getKey(drawn.name);
            if (!x.isStream() || !shown(drawn, resources) || optional_content.hidden(x.getDict().getKey("/OC"))) continue;
            QPDFObjectHandle subtype = x.getDict().getKey("/Subtype");  // (qpdf 11: its getters are not const)
            if (subtype.isName() && subtype.getName() == "/Form") {
                if (depth >= kMaxFormDepth) {
                    incomplete = true;
                    continue;
                }
                const bool own_resources = x.getDict().getKey("/Resources").isDictionary();
                if (x.getObjGen().isIndirect() && !forms_entered.emplace(x.getObjGen(), own_resources ? QPDFObjGen() : owner_id).second)
                    continue;  // a loop, or drawn twice
                walk(QPDFPageObjectHelper(x), resources, depth + 1, fmt::format("{}form {}'s ", whose, drawn.name));
            } else if (subtype.isName() && subtype.getName() == "/Image") {
                const std::string image_name = fmt::format("{}image {}", whose, drawn.name);
                if (jpeg_only(x)) take(x, image_name);
                // Its soft mask, which says where the image shows: a damaged one leaves parts
                // of the image out, whatever the image's own filter.
                QPDFObjectHandle mask = x.getDict().getKey("/SMask");
                if (mask.isStream() && jpeg_only(mask)) take(mask, image_name + "'s soft mask");
            }
        }
    }

    // Whether what the content draws is outside every /OC marked-content section that is
    // switched off (the sections name optional content in the resources' /Properties).
    bool shown(const ContentDraw& drawn, QPDFObjectHandle& resources) const {
        if (drawn.optional_content.empty() || !resources.isDictionary()) return true;
        QPDFObjectHandle properties = resources.getKey("/Properties");
        if (!properties.isDictionary()) return true;
        for (const std::string& name : drawn.optional_content)
            if (optional_content.hidden(properties.getKey(name))) return false;
        return true;
    }

    // The appearances poppler draws with the page: each annotation's normal appearance, in
    // its state (/AS; without one, the only state there is, else "/Off", as poppler takes
    // it), unless the annotation is hidden, not for the screen, or in optional content
    // switched off. Annotations are numbered by their place in the page's /Annots.
    void walk_annotations(QPDFPageObjectHelper& page) {
        QPDFObjectHandle annotations = page.getObjectHandle().getKey("/Annots");
        if (!annotations.isArray()) return;
        for (int k = 0; k < annotations.getArrayNItems(); ++k) {
            QPDFObjectHandle annotation = annotations.getArrayItem(k);
            if (!annotation.isDictionary()) continue;
            QPDFObjectHandle flags = annotation.getKey("/F");
            if (flags.isInteger() && (flags.getIntValue() & (an_hidden | an_no_view))) continue;
            if (optional_content.hidden(annotation.getKey("/OC"))) continue;
            QPDFObjectHandle appearance = annotation.getKey("/AP").getKey("/N");
            if (appearance.isDictionary()) {
                QPDFObjectHandle state = annotation.getKey("/AS");
                const std::set<std::string> states = appearance.getKeys();
                appearance = appearance.getKey(state.isName() ? state.getName() : states.size() == 1 ? *states.begin() : "/Off");
            }
            if (!appearance.isStream()) continue;
            if (appearance.getObjGen().isIndirect() && !forms_entered.emplace(appearance.getObjGen(), QPDFObjGen()).second) continue;
            // An appearance has its own resources: it does not inherit the page's.
            walk(QPDFPageObjectHelper(appearance), QPDFObjectHandle(), 1, fmt::format("its annotation {}'s ", k + 1));
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
        const OptionalContent optional_content(pdf);
        for (auto& page : pages) {
            std::vector<std::size_t>& on_page = out.pages.emplace_back();
            std::vector<std::string>& names = out.names.emplace_back();
            PageWalk walk{out, seen, optional_content, size, on_page, names, {}};
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
