// Its manifest cannot be built: a descriptor factory throws while the manifest is made.
#include <stdexcept>

#include "docpipe/plugin.hpp"

namespace {
docpipe::ComponentDescriptor broken() { throw std::runtime_error("descriptor table corrupt"); }
}  // namespace

DOCPIPE_PLUGIN("loader-throws", "1.0.0", "loader test: throws", broken())
