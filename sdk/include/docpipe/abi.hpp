// docpipe SDK — ABI identity of a plugin.
//
// Contract: a plugin and the runtime exchange C++ objects (std::string, std::function,
// std::shared_ptr), so both must be built against the same SDK ABI version and the same
// C++ standard library. Before the loader touches any C++ type in a plugin it reads the
// plain C struct `docpipe_plugin_abi` (exported by DOCPIPE_PLUGIN) and refuses the file
// when either value differs, naming both. The struct layout below is frozen forever:
// new fields may only be appended, never reordered.
#pragma once

#include <cstdint>

// Bump when any SDK type that crosses the plugin boundary changes layout or semantics.
#define DOCPIPE_SDK_ABI_VERSION 7

#define DOCPIPE_STRINGIFY_IMPL(x) #x
#define DOCPIPE_STRINGIFY(x) DOCPIPE_STRINGIFY_IMPL(x)

// Compiler family + standard library generation + libstdc++ dual-ABI flag. Two builds
// with the same tag can pass std::string and friends to each other safely.
#if defined(__clang__)
#define DOCPIPE_COMPILER_FAMILY "clang"
#elif defined(__GNUC__)
#define DOCPIPE_COMPILER_FAMILY "gcc"
#else
#define DOCPIPE_COMPILER_FAMILY "unknown"
#endif

#if defined(_GLIBCXX_RELEASE)
#define DOCPIPE_STDLIB_TAG "libstdc++" DOCPIPE_STRINGIFY(_GLIBCXX_RELEASE) \
    "-cxx11abi" DOCPIPE_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define DOCPIPE_STDLIB_TAG "libc++" DOCPIPE_STRINGIFY(_LIBCPP_VERSION)
#else
#define DOCPIPE_STDLIB_TAG "unknown-stdlib"
#endif

#define DOCPIPE_COMPILER_TAG DOCPIPE_COMPILER_FAMILY "/" DOCPIPE_STDLIB_TAG

extern "C" {
// Exported by every plugin under the symbol name `docpipe_plugin_abi`.
struct docpipe_plugin_abi_info {
    std::uint32_t sdk_abi_version;  // DOCPIPE_SDK_ABI_VERSION the plugin was built with
    const char* compiler_tag;       // DOCPIPE_COMPILER_TAG the plugin was built with
};
}

namespace docpipe {
// Symbol names the loader looks up; part of the frozen ABI.
inline constexpr const char* kAbiSymbol = "docpipe_plugin_abi";
inline constexpr const char* kManifestSymbol = "docpipe_plugin_manifest";
inline constexpr std::uint32_t kSdkAbiVersion = DOCPIPE_SDK_ABI_VERSION;
inline constexpr const char* kCompilerTag = DOCPIPE_COMPILER_TAG;
}  // namespace docpipe
