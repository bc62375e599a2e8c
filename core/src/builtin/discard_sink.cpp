// sink.discard: the end of a port that is left unused on purpose.
//
// Every output port must lead somewhere, so a document cannot vanish by accident; when a
// pipeline does not want what a port sends (a router's `medium` during a trial, the
// reread gate's `done` in an experiment), it says so with this sink. It accepts
// everything, keeps nothing, and counts what it dropped (metric `discarded_total`), so the
// choice stays visible. Its documents count as delivered (the job says `submitted`); set
// `ledger: false` on the node, there is nothing to keep from being delivered twice.
//
// Threading: stateless; write() may run concurrently.
#include <fmt/core.h>

#include "builtin.hpp"

namespace docpipe::core {

namespace {

class DiscardSink : public Sink {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Sink;
        d.name = "sink.discard";
        d.summary = "Drops documents on purpose (for a port a pipeline does not use) and counts them";
        d.concurrent_safe = true;
        d.config = ConfigSpec{
            Field::boolean("log").default_value(false).describe("Log each dropped document's id at info level"),
        };
        return d;
    }
    DiscardSink(const Config& config, Context& context) : ctx_(context), log_(config.get_bool("log")) {}

    SinkResult write(const Document& doc) override {
        ctx_.metrics().increment("discarded_total");
        if (log_) ctx_.log().log(LogLevel::Info, "discarded", doc.id);
        return SinkResult::ok();
    }

private:
    Context& ctx_;
    bool log_;
};

}  // namespace

ComponentDescriptor discard_sink_descriptor() { return component<DiscardSink>(); }

}  // namespace docpipe::core
