// The "core" package: components compiled into the runtime.
#include "builtin.hpp"

namespace docpipe::core {

ComponentDescriptor review_sink_descriptor();
ComponentDescriptor dedup_transform_descriptor();
ComponentDescriptor discard_sink_descriptor();

const PluginManifest& builtin_manifest() {
    static const PluginManifest manifest{"core", DOCPIPE_VERSION_STRING, "Components built into the runtime", kSdkAbiVersion,
                                         kCompilerTag, {review_sink_descriptor(), dedup_transform_descriptor(), discard_sink_descriptor()}};
    return manifest;
}

}  // namespace docpipe::core
