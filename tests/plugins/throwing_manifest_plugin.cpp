// Its manifest cannot be built: a descriptor factory throws while the manifest is made. Built
// twice: once throwing a std::exception, once (THROW_NON_STD) an int, as C code or a careless
// plugin may.
#include <stdexcept>

#include "docpipe/plugin.hpp"

namespace {
docpipe::ComponentDescriptor broken() {
#ifdef THROW_NON_STD
    throw 42;
#else
    throw std::runtime_error("descriptor table corrupt");
#endif
}
}  // namespace

DOCPIPE_PLUGIN("loader-throws", "1.0.0", "loader test: throws", broken())
