// The "basic" package: drop folder in, files out.
#include "docpipe/plugin.hpp"
#include "directory_source.hpp"
#include "files_sink.hpp"

DOCPIPE_PLUGIN("basic", "0.1.0", "Drop folders and JSON file outputs",
               docpipe::component<docpipe::basic::DirectorySource>(),
               docpipe::component<docpipe::basic::FilesSink>())
