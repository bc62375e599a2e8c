// The "streams" package: pipeline stages connected by Redis Streams (consumer groups), so
// intake, OCR workers and delivery can run as separate processes on separate machines.
#include "docpipe/plugin.hpp"
#include "stream_sink.hpp"
#include "stream_source.hpp"

DOCPIPE_PLUGIN("streams", "0.1.0", "Redis Streams between pipeline stages (consumer groups, claims, blobs)",
               docpipe::component<docpipe::streams::StreamSink>(),
               docpipe::component<docpipe::streams::StreamSource>())
