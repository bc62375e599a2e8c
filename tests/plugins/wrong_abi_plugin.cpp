// Declares an SDK ABI version this runtime does not have; the manifest is never read.
#include <boost/config.hpp>

#include "docpipe/abi.hpp"

extern "C" BOOST_SYMBOL_EXPORT const docpipe_plugin_abi_info docpipe_plugin_abi = {999, DOCPIPE_COMPILER_TAG};
