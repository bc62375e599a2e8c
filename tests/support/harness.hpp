// Builds and runs pipelines from YAML text against the builtin test components and the
// real plugins of this build tree. Logs go to a string the test can search.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "builtin/builtin.hpp"
#include "pipeline.hpp"
#include "runtime.hpp"
#include "test_components.hpp"

namespace docpipe::test {

// A file's bytes (test fixtures).
inline Bytes read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "docpipe-test-XXXXXX").string();
        path_ = mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

class Harness {
public:
    Harness() : registry(std::make_shared<Registry>()) {
        reset_probes();
        registry->add_builtin(test_manifest(), "<test components>");
        registry->add_builtin(core::builtin_manifest(), "<built into docpipe>");
#ifdef DOCPIPE_TEST_PLUGIN_DIR
        registry->load_directory(DOCPIPE_TEST_PLUGIN_DIR);
#endif
        logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_stream));
        logger->set_level(spdlog::level::debug);
    }

    // Loads and resolves; returns the issues (formatted, with the temp dir stripped).
    std::vector<std::string> check(const std::string& yaml, core::PipelineSpec* out = nullptr) {
        const auto file = dir.path() / "p.yaml";
        { std::ofstream(file) << yaml; }
        std::vector<core::Issue> issues;
        auto spec = core::load_pipeline(file, issues);
        core::resolve(spec, *registry, issues);
        std::vector<std::string> lines;
        for (auto& i : issues) {
            i.file = "p.yaml";
            lines.push_back(i.format());
        }
        if (out) *out = std::move(spec);
        return lines;
    }

    std::unique_ptr<core::Runtime> build(const std::string& yaml, bool once) {
        core::PipelineSpec spec;
        auto issues = check(yaml, &spec);
        if (!issues.empty()) throw std::runtime_error("pipeline invalid: " + issues.front());
        core::RuntimeOptions options;
        options.once = once;
        options.logger = logger;
        return std::make_unique<core::Runtime>(std::move(spec), registry, options);
    }

    std::string logs() {
        logger->flush();
        return log_stream.str();
    }

    TempDir dir;
    std::shared_ptr<Registry> registry;
    std::ostringstream log_stream;
    std::shared_ptr<spdlog::logger> logger;
};

}  // namespace docpipe::test
