// Fuzz target: a pipeline file's text through the loader and validator
// (core/src/pipeline.cpp), exactly as `docpipe validate` and a SIGHUP reload run them:
// load_pipeline_text (YAML parse, tab check, substitution, top-level sections, nodes,
// edges), then resolve (components, every node's config against its spec, ports, cycles,
// reachability), then each issue's message and the Graphviz rendering.
//
// Components come from an in-memory registry — the runtime's built-ins plus descriptors
// shaped like the shipped plugins' (same names, field types and ports) — so no plugin is
// loaded and nothing is written. Validation must report problems as issues; an exception
// escaping it would take down a reload, so libFuzzer reports it as a crash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "builtin/builtin.hpp"
#include "docpipe/registry.hpp"
#include "fuzz_check.hpp"
#include "pipeline.hpp"

using namespace docpipe;

namespace {

// Pipeline files are a few KiB; larger inputs mostly make each run slower.
constexpr std::size_t kMaxInput = 16 * 1024;

ComponentDescriptor descriptor(ComponentKind kind, std::string name, ConfigSpec spec, std::vector<PortSpec> ports = {}) {
    ComponentDescriptor d;
    d.kind = kind;
    d.name = std::move(name);
    d.summary = "fuzz stand-in";
    d.config = std::move(spec);
    if (ports.empty() && kind != ComponentKind::Sink) ports.push_back({"out", "documents"});
    d.output_ports = std::move(ports);
    // No `create`: validation only reads descriptors, it never builds a component.
    return d;
}

const PluginManifest& fuzz_manifest() {
    static const PluginManifest m{
        "fuzz", "0", "descriptors shaped like the shipped plugins'", DOCPIPE_SDK_ABI_VERSION, DOCPIPE_COMPILER_TAG,
        {descriptor(ComponentKind::Source, "source.directory",
                    ConfigSpec{Field::string("path").required().path(), Field::string_list("patterns").default_value({"*"}),
                               Field::duration("poll_interval").default_value("2s").min(0),
                               Field::enumeration("after", {"move", "delete", "keep"}).default_value("move")}),
         descriptor(ComponentKind::Source, "source.gmail",
                    ConfigSpec{Field::string("credentials").required().secret(), Field::string("query").default_value(""),
                               Field::integer("max_messages").default_value(10).min(1).max(500),
                               Field::object("pubsub")}),
         descriptor(ComponentKind::Transform, "transform.mime", ConfigSpec{Field::integer("max_attachments").default_value(20).min(0)}),
         descriptor(ComponentKind::Transform, "transform.pdf_pages",
                    ConfigSpec{Field::integer("dpi").default_value(300).min(50).max(1200),
                               Field::number("max_megapixels").default_value(100).min(0.01)}),
         descriptor(ComponentKind::Ocr, "ocr.tesseract",
                    ConfigSpec{Field::string_list("languages").default_value({"eng"}), Field::integer("psm").default_value(6)}),
         descriptor(ComponentKind::Transform, "transform.claims", ConfigSpec{Field::string("rules").path()}),
         descriptor(ComponentKind::Transform, "transform.confidence_router",
                    ConfigSpec{Field::number("high").default_value(0.9).min(0).max(1), Field::number("low").default_value(0.5).min(0).max(1)},
                    {{"high", ""}, {"medium", ""}, {"low", ""}}),
         descriptor(ComponentKind::Sink, "sink.files",
                    ConfigSpec{Field::string("path").required().path(), Field::enumeration("format", {"json", "raw"}).default_value("json")}),
         descriptor(ComponentKind::Sink, "sink.ncb",
                    ConfigSpec{Field::string("base_url").required(), Field::string("api_key").required().secret(),
                               Field::duration("timeout").default_value("30s")})}};
    return m;
}

const Registry& registry() {
    static Registry* r = [] {
        auto* reg = new Registry;  // lives for the process: descriptors are referenced by specs
        reg->add_builtin(core::builtin_manifest());
        reg->add_builtin(fuzz_manifest(), "<fuzz>");
        return reg;
    }();
    return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > kMaxInput) return 0;
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<core::Issue> issues;
    core::PipelineSpec spec = core::load_pipeline_text("/nonexistent/fuzz/pipeline.yaml", text, issues);
    core::resolve(spec, registry(), issues);
    for (const core::Issue& issue : issues) {
        FUZZ_CHECK(issue.line >= 0 && issue.column >= 0);  // positions are 1-based, 0 = unknown
        (void)issue.format();
    }
    (void)core::to_dot(spec);
    return 0;
}
