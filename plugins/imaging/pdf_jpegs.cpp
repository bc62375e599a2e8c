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
#include <cmath>
#include <exception>
#include <memory>
#include <optional>
#include <map>
#include <set>
#include <utility>

#include <fmt/core.h>

namespace docpipe::imaging {

namespace {

// How a stream's stored bytes hold a JPEG file: as they are (DCTDecode alone, "/DCTDecode"
// or "[/DCT]"), or behind filters that come before a last DCTDecode ("[/FlateDecode
// /DCTDecode]"), which qpdf undoes. poppler draws both through libjpeg alike. `unchecked`:
// a JPEG this check leaves to poppler (predictors, more than kMaxFiltersBeforeJpeg filters).
enum class JpegStorage { none, plain, behind_filters, unchecked };

constexpr int kMaxFiltersBeforeJpeg = 4;

// A stream's filters and their parameters as poppler reads them: /Filter, or /F where there
// is none; /DecodeParms, or /DP (poppler takes the inline-image abbreviations in any stream).
QPDFObjectHandle stream_key(QPDFObjectHandle& stream, const char* key, const char* abbreviation) {
    QPDFObjectHandle value = stream.getDict().getKey(key);
    return value.isNull() ? stream.getDict().getKey(abbreviation) : value;
}

JpegStorage jpeg_storage(QPDFObjectHandle& stream) {
    QPDFObjectHandle filter = stream_key(stream, "/Filter", "/F");
    auto dct = [](QPDFObjectHandle name) { return name.isName() && (name.getName() == "/DCTDecode" || name.getName() == "/DCT"); };
    if (dct(filter)) return JpegStorage::plain;
    if (!filter.isArray() || filter.getArrayNItems() < 1 || !dct(filter.getArrayItem(filter.getArrayNItems() - 1)))
        return JpegStorage::none;
    if (filter.getArrayNItems() == 1) return JpegStorage::plain;
    if (filter.getArrayNItems() - 1 > kMaxFiltersBeforeJpeg) return JpegStorage::unchecked;
    // A predictor belongs to image samples, not to a JPEG's bytes, and qpdf sizes its rows
    // from /Columns (a hostile 2e9 took 770 MB where poppler refuses the row): left to poppler.
    QPDFObjectHandle parameters = stream_key(stream, "/DecodeParms", "/DP");
    if (parameters.isArray())
        for (int k = 0; k < parameters.getArrayNItems(); ++k) {
            QPDFObjectHandle entry = parameters.getArrayItem(k);
            QPDFObjectHandle predictor = entry.isDictionary() ? entry.getKey("/Predictor") : QPDFObjectHandle::newNull();
            if (!predictor.isNull() && !(predictor.isInteger() && predictor.getIntValue() == 1)) return JpegStorage::unchecked;
        }
    else if (!parameters.isNull())
        return JpegStorage::unchecked;  // one dictionary for several filters: malformed
    return JpegStorage::behind_filters;
}

// A page's (or form's) decoded content, kept up to kMaxContentBytes: past that the rest is
// dropped and `overflow` set, so a content stream that inflates to gigabytes costs time
// but no memory (poppler must inflate it too, to draw the page).
constexpr std::size_t kMaxContentBytes = 32u << 20;

// Thrown by a collector made with `stop_past_limit`: the decoding stops there, instead of
// inflating the rest of a bomb for nothing.
struct PastLimit : std::exception {
    const char* what() const noexcept override { return "past the limit"; }
};

class ContentCollector : public Pipeline {
  public:
    explicit ContentCollector(std::size_t max_bytes = kMaxContentBytes, bool stop_past_limit = false)
        : Pipeline("content", nullptr), max_bytes_(max_bytes), stop_past_limit_(stop_past_limit) {}
    void write(unsigned char const* data, size_t len) override {
        if (overflow || text.size() + len > max_bytes_) {
            overflow = true;
            if (stop_past_limit_) throw PastLimit();
            return;
        }
        text.append(reinterpret_cast<const char*>(data), len);
    }
    void finish() override {}
    std::string text;
    bool overflow = false;

  private:
    std::size_t max_bytes_;
    bool stop_past_limit_;
};

// Forms drawn inside forms are followed this deep (a real page nests two or three).
constexpr int kMaxFormDepth = 8;

// Optional content (layers) switched off in the document's default view: poppler does not
// draw what it holds, so it is not checked. The rules are poppler's (OptionalContent.cc):
// only the groups /OCProperties lists count, each on unless the view's /BaseState is /OFF;
// /ON, then /OFF, set those they list, up to the first entry that is not a listed group.
class OptionalContent {
  public:
    explicit OptionalContent(QPDF& pdf) {
        QPDFObjectHandle properties = pdf.getRoot().getKey("/OCProperties");
        QPDFObjectHandle groups = properties.getKey("/OCGs");
        if (!groups.isArray()) return;  // poppler then draws everything
        enabled_ = true;
        for (int k = 0; k < groups.getArrayNItems() && k < kMaxGroups; ++k)
            if (const QPDFObjGen id = groups.getArrayItem(k).getObjGen(); id.isIndirect()) on_[id] = true;
        QPDFObjectHandle view = properties.getKey("/D");
        if (!view.isDictionary()) return;
        QPDFObjectHandle base = view.getKey("/BaseState");
        if (base.isName() && base.getName() == "/OFF")
            for (auto& group : on_) group.second = false;
        set(view.getKey("/ON"), true);
        set(view.getKey("/OFF"), false);
    }

    // Whether `oc`, an /OC value (a group, or a membership dictionary over groups), hides
    // what it marks. A membership dictionary's /VE expression is not evaluated: it is shown.
    bool hidden(QPDFObjectHandle oc) const {
        if (!enabled_ || !oc.isDictionary()) return false;
        QPDFObjectHandle type = oc.getKey("/Type");
        if (type.isName() && type.getName() == "/OCG") return oc.getObjGen().isIndirect() && is_on(oc) == false;
        if (!(type.isName() && type.getName() == "/OCMD") || oc.getKey("/VE").isArray()) return false;
        QPDFObjectHandle groups = oc.getKey("/OCGs");
        if (!groups.isArray()) return groups.getObjGen().isIndirect() && is_on(groups) == false;  // one group: its state alone
        QPDFObjectHandle policy = oc.getKey("/P");
        const std::string rule = policy.isName() ? policy.getName() : "/AnyOn";
        // Groups not listed in /OCProperties are passed over, as poppler passes them.
        bool any_on = false, any_off = false;
        for (int k = 0; k < groups.getArrayNItems() && k < kMaxGroups; ++k) {
            const std::optional<bool> on = is_on(groups.getArrayItem(k));
            any_on = any_on || on == true;
            any_off = any_off || on == false;
        }
        if (rule == "/AnyOn") return !any_on;
        if (rule == "/AllOn") return any_off;
        if (rule == "/AnyOff") return !any_off;
        if (rule == "/AllOff") return any_on;
        return false;
    }

  private:
    static constexpr int kMaxGroups = 4096;

    void set(QPDFObjectHandle list, bool on) {
        if (!list.isArray()) return;
        for (int k = 0; k < list.getArrayNItems() && k < kMaxGroups; ++k) {
            const auto it = on_.find(list.getArrayItem(k).getObjGen());
            if (it == on_.end()) break;
            it->second = on;
        }
    }
    // A listed group's state; nothing for anything else.
    std::optional<bool> is_on(QPDFObjectHandle group) const {
        const QPDFObjGen id = group.getObjGen();
        if (!id.isIndirect()) return std::nullopt;
        const auto it = on_.find(id);
        return it == on_.end() ? std::nullopt : std::optional<bool>(it->second);
    }

    bool enabled_ = false;
    std::map<QPDFObjGen, bool> on_;
};

// How many components a colour space from the resources has: a device space by name, or an
// array naming its family ([/ICCBased stream], [/Indexed ...], [/DeviceN [names] ...]). 0 when
// it cannot tell, and a pattern space has none an image can use.
int colour_components(QPDFObjectHandle space) {
    if (space.isArray() && space.getArrayNItems() >= 1) {
        QPDFObjectHandle family = space.getArrayItem(0);
        if (!family.isName()) return 0;
        const std::string name = family.getName();
        if (name == "/ICCBased" && space.getArrayNItems() >= 2) {
            QPDFObjectHandle n = space.getArrayItem(1).isStream() ? space.getArrayItem(1).getDict().getKey("/N") : QPDFObjectHandle::newNull();
            return n.isInteger() && n.getIntValue() >= 1 && n.getIntValue() <= 4 ? static_cast<int>(n.getIntValue()) : 0;
        }
        if (name == "/DeviceN" && space.getArrayNItems() >= 2 && space.getArrayItem(1).isArray())
            return std::min(space.getArrayItem(1).getArrayNItems(), 32);
        if (name == "/Indexed" || name == "/I" || name == "/CalGray" || name == "/Separation") return 1;
        if (name == "/CalRGB" || name == "/Lab") return 3;
        space = family;  // [/DeviceRGB]
    }
    return space.isName() ? device_colour_components(space.getName()) : 0;
}

// The resources in force where a content stream is drawn, innermost first: a form's own,
// then those of the forms and the page around it. poppler looks a name up through them in
// that order, so a form (or an annotation's appearance) that lacks /Im0 draws the /Im0 of
// the page that draws it.
using Resources = std::vector<QPDFObjectHandle>;

QPDFObjectHandle look_up(Resources& resources, const char* category, const std::string& name) {
    for (QPDFObjectHandle& r : resources) {
        QPDFObjectHandle names = r.getKey(category);
        if (names.isDictionary() && names.hasKey(name)) return names.getKey(name);
    }
    return QPDFObjectHandle::newNull();
}

// An image is read once however many pages draw it: an image or soft-mask stream by its
// object, an inline image by the object whose content holds it and its number there.
using ImageKey = std::pair<QPDFObjGen, int>;

constexpr std::int64_t kMaxPictureSide = std::int64_t{1} << 24;

// The area scale of a form's /Matrix (|ad - bc|), as poppler reads it: no array is the
// identity; an array's first four entries, each 0 where missing or not a number (a short
// one makes poppler draw nothing).
double matrix_area(QPDFObjectHandle matrix) {
    if (!matrix.isArray()) return 1.0;
    double m[4];
    for (int k = 0; k < 4; ++k) {
        QPDFObjectHandle v = k < matrix.getArrayNItems() ? matrix.getArrayItem(k) : QPDFObjectHandle::newNull();
        m[k] = v.isNumber() ? v.getNumericValue() : 0.0;
    }
    const double area = std::abs(m[0] * m[3] - m[1] * m[2]);
    return std::isfinite(area) ? area : 0.0;
}

// A box as poppler reads one: an array of four numbers, corners in any order.
std::optional<QPDFObjectHandle::Rectangle> box_of(QPDFObjectHandle box) {
    if (!box.isArray() || box.getArrayNItems() != 4) return std::nullopt;
    double v[4];
    for (int k = 0; k < 4; ++k) {
        QPDFObjectHandle x = box.getArrayItem(k);
        if (!x.isNumber()) return std::nullopt;
        v[k] = x.getNumericValue();
        if (!std::isfinite(v[k])) return std::nullopt;
    }
    return QPDFObjectHandle::Rectangle(std::min(v[0], v[2]), std::min(v[1], v[3]), std::max(v[0], v[2]), std::max(v[1], v[3]));
}

double area_of(const QPDFObjectHandle::Rectangle& r) { return (r.urx - r.llx) * (r.ury - r.lly); }

// The area poppler renders: the crop box clipped to the media box; the media box alone
// without a usable crop box; US Letter without a usable media box. 0 when the clipped box is
// empty (the caller then cannot tell what share of the page a picture covers).
double page_area(QPDFPageObjectHelper& page) {
    try {
        QPDFObjectHandle::Rectangle media = box_of(page.getAttribute("/MediaBox", false)).value_or(QPDFObjectHandle::Rectangle(0, 0, 612, 792));
        std::optional<QPDFObjectHandle::Rectangle> crop = box_of(page.getAttribute("/CropBox", false));
        if (!crop) return area_of(media);
        const QPDFObjectHandle::Rectangle clipped(std::max(crop->llx, media.llx), std::max(crop->lly, media.lly),
                                                   std::min(crop->urx, media.urx), std::min(crop->ury, media.ury));
        if (clipped.urx <= clipped.llx || clipped.ury <= clipped.lly) return 0.0;
        return area_of(clipped);
    } catch (const std::exception&) {
        return 0.0;
    }
}

struct PageWalk {
    PdfJpegs& out;
    std::map<ImageKey, std::size_t>& seen;
    const OptionalContent& optional_content;
    std::size_t file_size;
    std::vector<std::size_t>& on_page;
    std::vector<std::string>& names_on_page;
    PageImages& pictures;
    double page_area = 0;  // as poppler renders it, in default user space units; 0 when unknown
    std::set<QPDFObjGen> pictures_counted;  // image objects whose pixels are counted on this page
    // The forms entered on this page, each with the object whose resources it borrows (a
    // form without its own draws another image /Im0 in each place it is drawn from).
    std::set<std::pair<QPDFObjGen, QPDFObjGen>> forms_entered;
    bool incomplete = false;  // a content stream too large, or a form nested too deep

    // The images drawn by `owner` (a page, a form XObject or an annotation's appearance) and
    // the forms it draws, with `around` the resources in force where it is drawn. `whose`
    // names the owner for the page's notes: "its " for the page, "its form /Fm0's " for a
    // form it draws.
    // `scale` is what an area in the owner's space is on the page (1 for the page itself; the
    // product of the areas of the transformations a form is drawn under; 0 where they flatten
    // it, so poppler draws nothing; NaN where it cannot be told).
    void walk(QPDFPageObjectHelper owner, const Resources& around, int depth, const std::string& whose, double scale) {
        // A form's content is its stream's data; so is an appearance's, which poppler draws
        // as a form whatever its /Subtype says (qpdf reads a stream without /Subtype /Form as
        // a page, which has none).
        QPDFObjectHandle object = owner.getObjectHandle();
        Resources resources;
        QPDFObjectHandle own = object.isStream() ? object.getDict().getKey("/Resources") : owner.getAttribute("/Resources", false);
        if (own.isDictionary()) resources.push_back(own);
        resources.insert(resources.end(), around.begin(), around.end());
        ContentDraws draws;
        {
            ContentCollector content;
            if (object.isStream()) object.pipeStreamData(&content, 0, qpdf_dl_specialized);
            else owner.pipeContents(&content);
            if (content.overflow) incomplete = true;
            draws = content_draws(content.text, [&](const std::string& name) { return colour_components(look_up(resources, "/ColorSpace", name)); });
        }  // the content's text is let go before the forms it draws are read
        pictures.marks += draws.marks;
        if (draws.areas_unknown) scale = std::nan("");  // every picture of this owner: its share unknown
        const std::vector<bool> section_hidden = hidden_sections(draws, resources);
        auto shown = [&](const ContentDraw& drawn) { return drawn.section < 0 || !section_hidden[static_cast<std::size_t>(drawn.section)]; };
        const QPDFObjGen owner_id = object.getObjGen();
        for (const ContentInlineImage& image : draws.inline_images)
            if (shown(image)) note_picture(static_cast<std::int64_t>(std::min<std::uint64_t>(image.width, kMaxPictureSide)),
                                           static_cast<std::int64_t>(std::min<std::uint64_t>(image.height, kMaxPictureSide)),
                                           scale * image.area);
        for (ContentInlineJpeg& jpeg : draws.inline_jpegs) {
            const ImageKey key{owner_id, jpeg.number};
            const std::string name = fmt::format("{}inline image {}", whose, jpeg.number);
            if (shown(jpeg) && !note_again(key, owner_id.isIndirect(), name) && !full())
                store(key, owner_id.isIndirect(), jpeg.bytes.data(), jpeg.bytes.size(), name);
        }
        draws.inline_jpegs.clear();
        for (const ContentXObject& drawn : draws.xobjects) {
            QPDFObjectHandle x = look_up(resources, "/XObject", drawn.name);
            if (!x.isStream() || !shown(drawn) || optional_content.hidden(x.getDict().getKey("/OC"))) continue;
            QPDFObjectHandle subtype = x.getDict().getKey("/Subtype");  // (qpdf 11: its getters are not const)
            if (subtype.isName() && subtype.getName() == "/Form") {
                if (depth >= kMaxFormDepth) {
                    incomplete = true;
                    continue;
                }
                const bool own_resources = x.getDict().getKey("/Resources").isDictionary();
                if (x.getObjGen().isIndirect() && !forms_entered.emplace(x.getObjGen(), own_resources ? QPDFObjGen() : owner_id).second)
                    continue;  // a loop, or drawn twice
                walk(QPDFPageObjectHelper(x), resources, depth + 1, fmt::format("{}form {}'s ", whose, drawn.name),
                     scale * drawn.area * matrix_area(x.getDict().getKey("/Matrix")));
            } else if (subtype.isName() && subtype.getName() == "/Image") {
                note_size(x, scale * drawn.area);
                const std::string image_name = fmt::format("{}image {}", whose, drawn.name);
                take(x, image_name);
                // Its soft mask, which says where the image shows: a damaged one leaves parts
                // of the image out, whatever the image's own filter.
                QPDFObjectHandle mask = x.getDict().getKey("/SMask");
                if (mask.isStream()) take(mask, image_name + "'s soft mask");
            }
        }
    }

    // For each /OC marked-content section of the content, whether it hides what it holds:
    // its own optional content (named in /Properties) is off, or a section around it hides.
    // A section's parent comes before it, so one pass in order does it, and each name is
    // looked up once however often the content opens a section with it.
    std::vector<bool> hidden_sections(const ContentDraws& draws, Resources& resources) const {
        std::vector<bool> hidden(draws.sections.size(), false);
        std::map<std::string, bool> by_name;
        for (std::size_t k = 0; k < draws.sections.size(); ++k) {
            const OptionalSection& section = draws.sections[k];
            auto [it, fresh] = by_name.emplace(section.name, false);
            if (fresh) it->second = optional_content.hidden(look_up(resources, "/Properties", section.name));
            hidden[k] = it->second || (section.parent >= 0 && hidden[static_cast<std::size_t>(section.parent)]);
        }
        return hidden;
    }

    // The appearances poppler draws with the page: each annotation's normal appearance, in
    // its state (/AS; without one, the only state there is, else "/Off", as poppler takes
    // it), unless the annotation is hidden, not for the screen, or in optional content
    // switched off. Annotations are numbered by their place in the page's /Annots.
    void walk_annotations(QPDFPageObjectHelper& page) {
        QPDFObjectHandle annotations = page.getObjectHandle().getKey("/Annots");
        if (!annotations.isArray()) return;
        Resources page_resources;
        if (QPDFObjectHandle own = page.getAttribute("/Resources", false); own.isDictionary()) page_resources.push_back(own);
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
            // poppler draws it with the page's resources around its own.
            // poppler fits the appearance's bounding box into the annotation's /Rect: what it
            // draws is scaled by their areas' ratio (NaN, so not known, where either is unusable).
            const auto rect = box_of(annotation.getKey("/Rect"));
            const auto bbox = box_of(appearance.getDict().getKey("/BBox"));
            const double scale = rect && bbox && area_of(*bbox) > 0 ? area_of(*rect) / area_of(*bbox) : std::nan("");
            walk(QPDFPageObjectHelper(appearance), page_resources, 1, fmt::format("its annotation {}'s ", k + 1), scale);
        }
    }

    // An image XObject's stated size, drawn over `area` of the page's units. A side past 2^24
    // pixels is taken as 2^24 (poppler refuses such an image; the sums must not overflow).
    void note_size(QPDFObjectHandle& image, double area) {
        QPDFObjectHandle w = image.getDict().getKey("/Width"), h = image.getDict().getKey("/Height");
        if (!w.isInteger() || !h.isInteger() || w.getIntValue() <= 0 || h.getIntValue() <= 0) return;
        // An image drawn twice (a header and a footer band) has its pixels once.
        const QPDFObjGen id = image.getObjGen();
        const bool counted = id.isIndirect() && !pictures_counted.insert(id).second;
        note_picture(std::min<long long>(w.getIntValue(), kMaxPictureSide), std::min<long long>(h.getIntValue(), kMaxPictureSide), area,
                     !counted);
    }

    void note_picture(std::int64_t width, std::int64_t height, double area, bool count_pixels = true) {
        if (width <= 0 || height <= 0 || area == 0) return;  // area 0: flattened to nothing, poppler draws nothing
        const DrawnSize size{width, height};
        if (size.pixels() > pictures.largest.pixels()) pictures.largest = size;
        if (count_pixels) pictures.pixels = std::min<std::int64_t>(pictures.pixels + size.pixels(), std::int64_t{1} << 60);
        if (page_area <= 0 || !(area >= 0) || !std::isfinite(area)) {
            pictures.coverage_known = false;
            return;
        }
        pictures.coverage += std::min(1.0, area / page_area);
    }

    // An image or soft-mask stream, when it holds a JPEG.
    void take(QPDFObjectHandle& image, const std::string& name) {
        const JpegStorage storage = jpeg_storage(image);
        if (storage == JpegStorage::none) return;
        if (storage == JpegStorage::unchecked) {
            ++out.unchecked;
            return;
        }
        const QPDFObjGen id = image.getObjGen();
        if (note_again(ImageKey{id, 0}, id.isIndirect(), name) || full()) return;
        // qpdf reads a stream no further than the file goes, whatever its /Length says.
        std::shared_ptr<Buffer> stored = image.getRawStreamData();
        if (storage == JpegStorage::plain) {
            store(ImageKey{id, 0}, id.isIndirect(), reinterpret_cast<const char*>(stored->getBuffer()), stored->getSize(), name);
            return;
        }
        if (std::optional<std::string> jpeg = undo_outer_filters(image, std::move(stored)))
            store(ImageKey{id, 0}, id.isIndirect(), jpeg->data(), jpeg->size(), name);
        else
            ++out.unchecked;
    }

    // The JPEG inside a stream whose filters before DCTDecode qpdf undoes: a scratch stream
    // holds the stored bytes under those filters alone, and qpdf decodes it, no further than
    // the copy budget. A filter that meets bad data (a corrupt or cut Flate) ends the JPEG
    // there, as poppler's decoder does, and the JPEG is then found cut. Nothing when qpdf
    // cannot undo a filter (JBIG2, JPX) or the budget runs out.
    std::optional<std::string> undo_outer_filters(QPDFObjectHandle& image, std::shared_ptr<Buffer> stored) {
        const std::size_t room = 2 * file_size - std::min(out.copied_bytes, 2 * file_size);
        QPDF* const pdf = image.getOwningQPDF();
        if (room == 0 || pdf == nullptr) return std::nullopt;
        QPDFObjectHandle filters = stream_key(image, "/Filter", "/F");
        const int outer = filters.getArrayNItems() - 1;
        ContentCollector jpeg(room, true);
        bool undone = false;
        QPDFObjectHandle scratch = QPDFObjectHandle::newStream(pdf);
        // The scratch stream stays among the document's objects: it lets go of the bytes
        // when done, so many images over one large run of bytes do not hold a copy each.
        struct Release {
            QPDFObjectHandle& stream;
            ~Release() {
                try {
                    stream.replaceStreamData(std::string(), QPDFObjectHandle::newNull(), QPDFObjectHandle::newNull());
                } catch (const std::exception&) {
                }
            }
        } release{scratch};
        scratch.replaceStreamData(std::move(stored), first_entries(filters, outer), first_entries(stream_key(image, "/DecodeParms", "/DP"), outer));
        try {
            // qpdf does not catch what a filter throws on data given this way: bad data ends here.
            scratch.pipeStreamData(&jpeg, &undone, 0, qpdf_dl_specialized, true);
        } catch (const PastLimit&) {
            return std::nullopt;
        } catch (const std::exception&) {
            undone = true;  // decoded up to the bad data
        }
        if (!undone || jpeg.overflow) return std::nullopt;
        return std::move(jpeg.text);
    }

    // The first `n` entries of a /Filter or /DecodeParms array, null past its end (as poppler
    // reads a parameter list shorter than the filters); null for no array.
    static QPDFObjectHandle first_entries(QPDFObjectHandle list, int n) {
        if (!list.isArray()) return QPDFObjectHandle::newNull();
        std::vector<QPDFObjectHandle> items;
        for (int k = 0; k < n; ++k) items.push_back(k < list.getArrayNItems() ? list.getArrayItem(k) : QPDFObjectHandle::newNull());
        return QPDFObjectHandle::newArray(items);
    }

    // A JPEG not seen before, on a page with room for it: copied out and listed for the page.
    void store(const ImageKey& key, bool keyed, const char* bytes, std::size_t size, const std::string& name) {
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
            PageImages& pictures = out.drawn.emplace_back();
            PageWalk walk{out, seen, optional_content, size, on_page, names, pictures, page_area(page), {}, {}};
            walk.walk(page, Resources{}, 0, "its ", 1.0);
            walk.walk_annotations(page);
            if (walk.incomplete) ++out.unchecked;
            pictures.incomplete = walk.incomplete;
        }
        return out;
    } catch (const std::exception& e) {
        why_not = fmt::format("qpdf cannot read the file's objects ({}); the page images are not checked", e.what());
        return std::nullopt;
    }
}

}  // namespace docpipe::imaging
