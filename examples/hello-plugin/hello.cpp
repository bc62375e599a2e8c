// transform.hello — the smallest useful docpipe component: it adds a greeting field to
// every document. Read this file top to bottom to learn the SDK:
//   1. describe(): the component's self-description (kind, name, config spec, ports);
//   2. the constructor reads its validated config (only keys the spec declares);
//   3. process(): copy the immutable input, change the copy, emit it;
//   4. DOCPIPE_PLUGIN(...): export the package with its components.
#include "docpipe/plugin.hpp"

namespace hello {

class Greeter : public docpipe::Transform {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Transform;
        d.name = "transform.hello";
        d.summary = "Adds fields.greeting = '<greeting>, <file name>' to each document";
        d.concurrent_safe = true;  // no mutable state: any number of threads may call process()
        d.config = docpipe::ConfigSpec{
            docpipe::Field::string("greeting").default_value("hello").describe("Word to greet with"),
            docpipe::Field::boolean("shout").default_value(false).describe("Upper-case the greeting"),
        };
        return d;
    }

    Greeter(const docpipe::Config& config, docpipe::Context& context)
        : greeting_(config.get_string("greeting")), ctx_(context) {
        if (config.get_bool("shout"))
            for (auto& c : greeting_) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }

    void process(const docpipe::DocumentPtr& input, docpipe::Outputs& out) override {
        auto doc = std::make_shared<docpipe::Document>(*input);  // inputs are immutable
        const std::string name = doc->parts.empty() ? "nobody" : doc->parts.front().name;
        doc->fields["greeting"] = greeting_ + ", " + name;
        ctx_.metrics().increment("greetings_total");
        out.emit(std::move(doc));
    }

private:
    std::string greeting_;
    docpipe::Context& ctx_;  // owned by the runtime; outlives this component
};

}  // namespace hello

DOCPIPE_PLUGIN("hello", "1.0.0", "Example out-of-tree plugin", docpipe::component<hello::Greeter>())
