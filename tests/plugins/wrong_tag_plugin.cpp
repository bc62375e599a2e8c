// Claims to be built by another compiler/standard library.
#include <boost/config.hpp>

#include "docpipe/abi.hpp"

extern "C" BOOST_SYMBOL_EXPORT const docpipe_plugin_abi_info docpipe_plugin_abi = {DOCPIPE_SDK_ABI_VERSION,
                                                                                   "msvc/msvcprt143"};
