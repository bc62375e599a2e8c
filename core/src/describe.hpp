// The component reference as Markdown (docs/components.md), from the registry's descriptors.
#pragma once

#include <string>

#include "docpipe/registry.hpp"

namespace docpipe::core {

// Packages and components sorted by name; no file paths, so the output is the same on
// every machine.
std::string describe_all_markdown(const Registry& registry);
// One component's section of that reference (`plugins describe NAME --markdown`).
std::string describe_markdown(const ComponentDescriptor& descriptor);

}  // namespace docpipe::core
