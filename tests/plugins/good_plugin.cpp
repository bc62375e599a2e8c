// A well-formed plugin with one component, for loader tests.
#include "docpipe/plugin.hpp"

namespace {
class Echo : public docpipe::Transform {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Transform;
        d.name = "transform.loader_echo";
        d.summary = "emits its input unchanged";
        return d;
    }
    Echo(const docpipe::Config&, docpipe::Context&) {}
    void process(const docpipe::DocumentPtr& in, docpipe::Outputs& out) override { out.emit(in); }
};
}  // namespace

DOCPIPE_PLUGIN("loader-good", "1.2.3", "loader test: good", docpipe::component<Echo>())
