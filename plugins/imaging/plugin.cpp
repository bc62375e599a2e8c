// The "imaging" package: decoding images and PDFs into pages.
#include "docpipe/plugin.hpp"

namespace docpipe::imaging {
ComponentDescriptor pdf_pages_descriptor();
}  // namespace docpipe::imaging

DOCPIPE_PLUGIN("imaging", "0.1.0", "Image and PDF decoding", docpipe::imaging::pdf_pages_descriptor())
