# The admin server's review UI: its data helpers and its static files, embedded at build
# time (no Node, no CDN at run time). Included from core/CMakeLists.txt.
set(DOCPIPE_UI_DIR ${CMAKE_CURRENT_SOURCE_DIR}/src/ui)
set(DOCPIPE_UI_ASSETS index.html app.css app.js api.js dom.js dashboard.js review.js jobs.js favicon.svg)
set(DOCPIPE_UI_DEPENDS "")
foreach(asset IN LISTS DOCPIPE_UI_ASSETS)
  list(APPEND DOCPIPE_UI_DEPENDS ${DOCPIPE_UI_DIR}/${asset})
endforeach()
set(DOCPIPE_UI_GENERATED ${CMAKE_CURRENT_BINARY_DIR}/generated/ui_assets.cpp)
string(REPLACE ";" "," DOCPIPE_UI_ASSET_ARG "${DOCPIPE_UI_ASSETS}")
add_custom_command(OUTPUT ${DOCPIPE_UI_GENERATED}
  COMMAND ${CMAKE_COMMAND} -DOUT=${DOCPIPE_UI_GENERATED} -DDIR=${DOCPIPE_UI_DIR} "-DASSETS=${DOCPIPE_UI_ASSET_ARG}"
          -P ${CMAKE_CURRENT_SOURCE_DIR}/src/admin/embed_assets.cmake
  DEPENDS ${DOCPIPE_UI_DEPENDS} ${CMAKE_CURRENT_SOURCE_DIR}/src/admin/embed_assets.cmake
  COMMENT "Embedding the review UI (core/src/ui)"
  VERBATIM)
target_sources(docpipe_core PRIVATE src/admin/review_data.cpp src/admin/page_preview.cpp ${DOCPIPE_UI_GENERATED})
# Page previews (sink.review scales and PNG-encodes the OCR'd rasters): Leptonica, which the
# imaging plugin needs anyway. Its own prefix, so the plugin's pkg-config lookup is untouched.
pkg_check_modules(DOCPIPE_CORE_LEPT REQUIRED IMPORTED_TARGET lept)
# A born-digital PDF page is read from its text layer and never rasterised for the OCR; its
# review image is rendered from the PDF with poppler, which the imaging plugin needs anyway.
pkg_check_modules(DOCPIPE_CORE_POPPLER REQUIRED IMPORTED_TARGET poppler-cpp)
target_link_libraries(docpipe_core PRIVATE PkgConfig::DOCPIPE_CORE_LEPT PkgConfig::DOCPIPE_CORE_POPPLER)
