// Plugin loading: each rejection names the file and the reason; good plugins load.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "docpipe/registry.hpp"
#include "docpipe/testing.hpp"
#include "harness.hpp"

using namespace docpipe;
namespace fs = std::filesystem;

namespace {
fs::path plugin_dir(const char* name) { return fs::path(DOCPIPE_TEST_PLUGIN_ROOT) / name; }

const RejectedPlugin& only_rejection(const Registry& r) {
    EXPECT_EQ(r.rejected().size(), 1u);
    return r.rejected().front();
}
}  // namespace

TEST(Loader, GoodPluginLoadsWithItsManifest) {
    Registry r;
    r.load_directory(plugin_dir("good"));
    ASSERT_TRUE(r.rejected().empty()) << r.rejected().front().reason;
    ASSERT_EQ(r.plugins().size(), 1u);
    EXPECT_EQ(r.plugins()[0].manifest->package, "loader-good");
    EXPECT_EQ(r.plugins()[0].manifest->version, "1.2.3");
    const ComponentDescriptor* d = r.find("transform.loader_echo");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->kind, ComponentKind::Transform);
    EXPECT_EQ(r.provider_of("transform.loader_echo"), plugin_dir("good") / "libloader-good.so");
    // And the component works: built through the same path the runtime uses.
    auto runner = docpipe::testing::NodeRunner::from_plugin(plugin_dir("good") / "libloader-good.so", "transform.loader_echo", "");
    auto out = runner.process(Document::from_bytes("a.txt", "text/plain", Bytes{'a'}));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].port, "out");
}

TEST(Loader, WrongAbiVersionIsRejectedNamingBothVersions) {
    Registry r;
    r.load_directory(plugin_dir("wrong-abi"));
    const auto& rej = only_rejection(r);
    EXPECT_EQ(rej.path, plugin_dir("wrong-abi") / "libloader-wrong-abi.so");
    EXPECT_EQ(rej.reason, "SDK ABI version mismatch: plugin built for ABI 999, this runtime has ABI " +
                              std::to_string(DOCPIPE_SDK_ABI_VERSION) + "; rebuild the plugin against this SDK");
    EXPECT_TRUE(r.plugins().empty());
}

TEST(Loader, WrongCompilerTagIsRejectedNamingBothTags) {
    Registry r;
    r.load_directory(plugin_dir("wrong-tag"));
    EXPECT_EQ(only_rejection(r).reason, std::string("compiler tag mismatch: plugin built with 'msvc/msvcprt143', this runtime with '") +
                                            DOCPIPE_COMPILER_TAG +
                                            "'; rebuild the plugin with the same compiler and standard library");
}

TEST(Loader, LibraryWithoutEntrySymbolIsRejected) {
    Registry r;
    r.load_directory(plugin_dir("no-entry"));
    EXPECT_EQ(only_rejection(r).reason,
              "missing entry symbol 'docpipe_plugin_abi': not a docpipe plugin, or built without DOCPIPE_PLUGIN(...)");
}

TEST(Loader, ManifestThatThrowsIsRejectedWithTheError) {
    Registry r;
    r.load_directory(plugin_dir("throws"));
    EXPECT_EQ(only_rejection(r).reason, "building the plugin manifest threw: descriptor table corrupt");
}

TEST(Loader, ManifestThatThrowsANonStandardExceptionIsRejected) {
    Registry r;
    r.load_directory(plugin_dir("throws-int"));
    EXPECT_EQ(only_rejection(r).reason, "building the plugin manifest threw something that is not a std::exception");
    EXPECT_TRUE(r.plugins().empty());
}

TEST(Loader, AFunctionNothingDefinesIsRefusedAtLoadNotAtItsFirstCall) {
    Registry r;
    r.load_directory(plugin_dir("unresolved"));
    EXPECT_TRUE(r.plugins().empty());
    EXPECT_THAT(only_rejection(r).reason, ::testing::HasSubstr("undefined symbol: docpipe_test_function_nobody_defines"));
    EXPECT_EQ(r.find("transform.loader_unresolved"), nullptr);
}

TEST(Loader, DuplicateComponentNamesBothFiles) {
    Registry r;
    r.load_directory(plugin_dir("dup"));
    ASSERT_EQ(r.plugins().size(), 1u);
    const auto first = plugin_dir("dup") / "libloader-dup-a.so";
    const auto second = plugin_dir("dup") / "libloader-dup-b.so";
    EXPECT_EQ(only_rejection(r).path, second);
    EXPECT_EQ(only_rejection(r).reason, "component 'sink.loader_dup' is provided twice: by " + first.string() + " and by " +
                                            second.string() + "; keeping the first (remove one of them)");
    EXPECT_EQ(r.provider_of("sink.loader_dup"), first);
}

TEST(Loader, NonLibraryFileReportsDlerror) {
    test::TempDir dir;
    { std::ofstream(dir.path() / "libjunk.so") << std::string(256, 'x'); }  // long enough to have a header
    Registry r;
    r.load_directory(dir.path());
    const auto& rej = only_rejection(r);
    EXPECT_EQ(rej.reason.rfind("cannot load: ", 0), 0u) << rej.reason;
    // dlerror() names the file and what is wrong with it.
    EXPECT_NE(rej.reason.find("libjunk.so"), std::string::npos) << rej.reason;
    EXPECT_NE(rej.reason.find("invalid ELF header"), std::string::npos) << rej.reason;
}

TEST(Loader, SameFileThroughTwoPathsLoadsOnce) {
    Registry r;
    r.load_directory(plugin_dir("good"));
    r.load_directory(plugin_dir("good") / ".." / "good");
    EXPECT_EQ(r.plugins().size(), 1u);
    EXPECT_TRUE(r.rejected().empty());
}

TEST(Loader, MissingDirectoryIsNotAnError) {
    Registry r;
    r.load_directory("/nonexistent/docpipe/plugins");
    EXPECT_TRUE(r.rejected().empty());
    ASSERT_EQ(r.searched_directories().size(), 1u);
    EXPECT_EQ(r.searched_directories()[0], "/nonexistent/docpipe/plugins (missing)");
}

TEST(Loader, PluginPathEnvironmentVariableIsSearchedFirst) {
    setenv("DOCPIPE_PLUGIN_PATH", (plugin_dir("good").string() + ":" + plugin_dir("dup").string()).c_str(), 1);
    auto dirs = default_plugin_directories();
    unsetenv("DOCPIPE_PLUGIN_PATH");
    ASSERT_GE(dirs.size(), 3u);
    EXPECT_EQ(dirs[0], plugin_dir("good"));
    EXPECT_EQ(dirs[1], plugin_dir("dup"));
}

TEST(Loader, PipelinePluginPathsAreRelativeToThePipelineFile) {
    test::TempDir dir;
    fs::create_directories(dir.path() / "conf");
    { std::ofstream(dir.path() / "conf" / "p.yaml") << "plugin_paths: [../plugins, /abs/dir]\nnodes: {}\nedges: []\n"; }
    std::vector<core::Issue> issues;
    auto spec = core::load_pipeline(dir.path() / "conf" / "p.yaml", issues);
    ASSERT_EQ(spec.plugin_paths.size(), 2u);
    EXPECT_EQ(spec.plugin_paths[0], dir.path() / "plugins");
    EXPECT_EQ(spec.plugin_paths[1], fs::path("/abs/dir"));
    auto all = core::plugin_directories(spec);
    EXPECT_EQ(all[0], dir.path() / "plugins");
}
