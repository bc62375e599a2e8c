// A plugin that calls a function no library defines. A lazy dlopen would load it, and the
// process would die with "symbol lookup error" at the first call, mid-run.
#include "docpipe/plugin.hpp"

extern "C" int docpipe_test_function_nobody_defines();

namespace {
class Calls : public docpipe::Transform {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Transform;
        d.name = "transform.loader_unresolved";
        d.summary = "calls a function nothing defines";
        return d;
    }
    Calls(const docpipe::Config&, docpipe::Context&) {}
    void process(const docpipe::DocumentPtr& in, docpipe::Outputs& out) override {
        if (docpipe_test_function_nobody_defines() == 0) out.emit(in);
    }
};
}  // namespace

DOCPIPE_PLUGIN("loader-unresolved", "1.0.0", "loader test: unresolved", docpipe::component<Calls>())
