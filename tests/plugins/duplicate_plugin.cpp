// Built twice (DUPLICATE_PACKAGE=a / b): both provide sink.loader_dup.
#include "docpipe/plugin.hpp"

namespace {
class Dup : public docpipe::Sink {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Sink;
        d.name = "sink.loader_dup";
        d.summary = "provided by two packages";
        return d;
    }
    Dup(const docpipe::Config&, docpipe::Context&) {}
    docpipe::SinkResult write(const docpipe::Document&) override { return docpipe::SinkResult::ok(); }
};
}  // namespace

DOCPIPE_PLUGIN("loader-dup-" DUPLICATE_PACKAGE, "1.0.0", "loader test: duplicate", docpipe::component<Dup>())
