#include "pdf_jpegs.hpp"

// Nothing here uses qpdf's old PointerHolder: its headers then need not define it (and do
// not warn that a program has not said so).
#define POINTERHOLDER_TRANSITION 4
#include <qpdf/Buffer.hh>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFObjGen.hh>
#include <qpdf/QPDFObjectHandle.hh>
#include <qpdf/QPDFPageDocumentHelper.hh>
#include <qpdf/QPDFPageObjectHelper.hh>

#include <algorithm>
#include <exception>
#include <memory>
#include <map>

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
            page.forEachImage(true, [&](QPDFObjectHandle& image, QPDFObjectHandle&, const std::string& key) {
                if (!jpeg_only(image)) return;
                if (on_page.size() >= kMaxJpegsPerPage) {
                    ++out.unchecked;
                    return;
                }
                const QPDFObjGen id = image.getObjGen();
                if (auto it = seen.find(id); it != seen.end() && id.isIndirect()) {
                    if (std::find(on_page.begin(), on_page.end(), it->second) == on_page.end()) on_page.push_back(it->second);
                    return;
                }
                // A hostile file can point many image objects at one large run of bytes: what is
                // copied (and then decoded) stays within twice the file's size.
                const long long declared = image.getDict().getKey("/Length").isInteger() ? image.getDict().getKey("/Length").getIntValue() : 0;
                if (declared < 0 || out.copied_bytes + static_cast<std::size_t>(declared) > 2 * size) {
                    ++out.unchecked;
                    return;
                }
                const std::shared_ptr<Buffer> stored = image.getRawStreamData();
                if (out.copied_bytes + stored->getSize() > 2 * size) {
                    ++out.unchecked;
                    return;
                }
                out.copied_bytes += stored->getSize();
                PdfJpeg jpeg;
                jpeg.name = key;
                jpeg.bytes.assign(stored->getBuffer(), stored->getBuffer() + stored->getSize());
                out.images.push_back(std::move(jpeg));
                if (id.isIndirect()) seen.emplace(id, out.images.size() - 1);
                on_page.push_back(out.images.size() - 1);
            });
        }
        return out;
    } catch (const std::exception& e) {
        why_not = fmt::format("qpdf cannot read the file's objects ({}); the page images are not checked", e.what());
        return std::nullopt;
    }
}

}  // namespace docpipe::imaging
