// docpipe SDK — declaring a plugin package.
//
// One shared library = one package = several components (like a GStreamer plugin holding
// several elements). Declare it once, in one .cpp of the package:
//
//   DOCPIPE_PLUGIN("basic", "0.1.0", "Drop folders and file outputs",
//                  docpipe::component<DirectorySource>(),
//                  docpipe::component<FilesSink>())
//
// Contract:
// - The macro exports two symbols: the C struct `docpipe_plugin_abi` (checked first, before
//   any C++ type is touched) and the Boost.DLL alias `docpipe_plugin_manifest`, a function
//   returning the manifest. Registration happens only through these exported symbols, never
//   through static initialisers.
// - Lifetime: the runtime never unloads a plugin library; descriptors, factories and the
//   objects they create may rely on the library staying mapped until process exit.
// - The manifest is built on first call, from whichever thread calls it (thread-safe
//   function-local static).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/config.hpp>
#include <boost/dll/alias.hpp>

#include "docpipe/abi.hpp"
#include "docpipe/component.hpp"

namespace docpipe {

struct PluginManifest {
    std::string package;      // "basic"
    std::string version;      // the package's own version, e.g. "0.1.0"
    std::string description;  // one line
    std::uint32_t sdk_abi_version = 0;
    std::string compiler_tag;
    std::vector<ComponentDescriptor> components;
};

using ManifestFunction = const PluginManifest&();

}  // namespace docpipe

#define DOCPIPE_PLUGIN(PACKAGE, VERSION, DESCRIPTION, ...)                                      \
    extern "C" BOOST_SYMBOL_EXPORT const docpipe_plugin_abi_info docpipe_plugin_abi = {        \
        DOCPIPE_SDK_ABI_VERSION, DOCPIPE_COMPILER_TAG};                                         \
    namespace docpipe_plugin_entry {                                                           \
    const ::docpipe::PluginManifest& manifest() {                                              \
        static const ::docpipe::PluginManifest instance{PACKAGE, VERSION, DESCRIPTION,         \
                                                        DOCPIPE_SDK_ABI_VERSION,               \
                                                        DOCPIPE_COMPILER_TAG, {__VA_ARGS__}};  \
        return instance;                                                                       \
    }                                                                                          \
    }                                                                                          \
    BOOST_DLL_ALIAS(docpipe_plugin_entry::manifest, docpipe_plugin_manifest)
