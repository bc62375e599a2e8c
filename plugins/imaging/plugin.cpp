// The "imaging" package: decoding images and PDFs into pages.
#include "docpipe/plugin.hpp"

namespace docpipe::imaging {
ComponentDescriptor pdf_pages_descriptor();
ComponentDescriptor preprocess_descriptor();
}  // namespace docpipe::imaging

DOCPIPE_PLUGIN("imaging", "0.1.0", "Image and PDF decoding, page clean-up", docpipe::imaging::pdf_pages_descriptor(),
               docpipe::imaging::preprocess_descriptor())
