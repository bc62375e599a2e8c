// The review web UI's static files (core/src/ui/), compiled into the binary by
// admin_ui.cmake so the UI works with no files beside the executable and nothing fetched
// from elsewhere (air-gapped offices).
#pragma once

#include <string_view>

namespace docpipe::core::admin {

struct UiAsset {
    std::string_view name;          // "app.js"
    std::string_view content_type;  // "text/javascript; charset=utf-8"
    std::string_view body;
    std::string_view etag;          // quoted, from the file's SHA-256
};

// The asset called `name` (no folders), or nullptr.
const UiAsset* find_ui_asset(std::string_view name);

}  // namespace docpipe::core::admin
