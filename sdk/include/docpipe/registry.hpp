// docpipe SDK — finding and loading plugin packages.
//
// Contract:
// - Ownership: the Registry owns the loaded libraries; keep it alive longer than every
//   component created from its descriptors. The libraries themselves are made resident
//   (RTLD_NODELETE) and are never unmapped, so documents and buffers a plugin created —
//   whose deleters are plugin code — stay safe to destroy after the Registry is gone.
// - Threading: load_* are not thread-safe; after loading, the const accessors may be used
//   from any thread.
// - Every file that is not accepted is listed in rejected() with a reason an operator can
//   act on (ABI or compiler-tag mismatch with both values, missing entry symbol, the
//   dlerror() text, a component name provided twice with both files).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/plugin.hpp"

namespace docpipe {

struct LoadedPlugin {
    std::filesystem::path path;
    const PluginManifest* manifest = nullptr;  // owned by the loaded library
};

struct RejectedPlugin {
    std::filesystem::path path;
    std::string reason;
};

class Registry {
public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Loads every "*.so" file in `dir` (not recursive), in name order. A missing directory
    // is recorded in searched_directories() as missing, not as an error.
    void load_directory(const std::filesystem::path& dir);
    // Loads one file; false (and a rejected() entry) when it is not accepted.
    bool load_file(const std::filesystem::path& file);
    // Registers components compiled into the host (tests, statically linked tools).
    void add_builtin(const PluginManifest& manifest, std::string origin = "<builtin>");

    const ComponentDescriptor* find(std::string_view component_name) const;
    // The file that provides a component (empty if unknown).
    std::filesystem::path provider_of(std::string_view component_name) const;
    std::vector<std::string> component_names() const;
    const std::vector<LoadedPlugin>& plugins() const;
    const std::vector<RejectedPlugin>& rejected() const;
    // Each directory searched, with " (missing)" appended when it did not exist.
    const std::vector<std::string>& searched_directories() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The directories searched by default, in order: each entry of $DOCPIPE_PLUGIN_PATH
// (colon-separated), then `<dir of the running executable>/../lib/docpipe/plugins`, then
// the install directory compiled into the SDK.
std::vector<std::filesystem::path> default_plugin_directories();

}  // namespace docpipe
