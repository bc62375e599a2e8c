// Golden messages for every class of pipeline error, with FILE:LINE:COL and node path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "harness.hpp"

using namespace docpipe;
using namespace docpipe::test;
using ::testing::ElementsAre;

namespace {
std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}
}  // namespace

TEST(PipelineErrors, ValidPipelineHasNoIssues) {
    Harness h;
    EXPECT_TRUE(h.check(R"(
nodes:
  in: {component: source.memory, config: {probe: p}}
  out: {component: sink.memory, config: {probe: p}}
edges: [in -> out]
)").empty());
}

TEST(PipelineErrors, YamlSyntaxError) {
    Harness h;
    auto issues = h.check("nodes:\n  in: {component: source.memory\nedges: []\n");
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].rfind("p.yaml:3:", 0), 0u) << issues[0];
    EXPECT_NE(issues[0].find("YAML syntax error"), std::string::npos) << issues[0];
}

TEST(PipelineErrors, UnknownKeysWithDidYouMean) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in:
    component: source.memory
    concurency: 2
    config: {probe: p, prob: q}
  out: {component: sink.memory, config: {probe: p}}
edgs: [in -> out]
logging: {levl: debug}
)");
    EXPECT_EQ(sorted(issues), sorted({
        "p.yaml:4:5: nodes.in.concurency: unknown key 'concurency' (did you mean 'concurrency'?)",
        "p.yaml:5:24: nodes.in.config.prob: unknown key 'prob' (did you mean 'probe'?)",
        "p.yaml:7:1: edgs: unknown key 'edgs' (did you mean 'edges'?)",
        "p.yaml:8:11: logging.levl: unknown key 'levl' (did you mean 'level'?)",
    })) << "the misspelt 'edgs' is the cause; its consequences (no edges, unconnected ports) are not reported";
}

TEST(PipelineErrors, ASwappedLetterSuggestsTheRightKeyAndNothingElse) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  mid: {component: transform.pass}
  out: {component: sink.memory, config: {probe: p}}
egdes: [in -> mid -> out]
)");
    EXPECT_THAT(issues, ElementsAre("p.yaml:5:1: egdes: unknown key 'egdes' (did you mean 'edges'?)"));
}

TEST(PipelineErrors, DuplicateKeysAreReportedWithBothPlaces) {
    Harness h;
    auto issues = h.check(R"(state: {backend: memory}
nodes:
  in: {component: source.memory, config: {probe: p}}
  ocr: {component: transform.pass}
  ocr: {component: transform.pass}
  out: {component: sink.memory, config: {probe: p, probe: q}}
edges: [in -> ocr -> out]
state: {backend: memory}
)");
    EXPECT_EQ(sorted(issues), sorted({
        "p.yaml:5:3: nodes.ocr: duplicate key 'ocr' (first at line 4, column 3): YAML would keep only one of them; rename or remove one",
        "p.yaml:6:52: nodes.out.config.probe: duplicate key 'probe' (first at line 6, column 42): YAML would keep only one of them; rename or remove one",
        "p.yaml:8:1: state: duplicate key 'state' (first at line 1, column 1): YAML would keep only one of them; rename or remove one",
    }));
    core::PipelineSpec spec;
    h.check("nodes:\n  in: {component: source.memory, config: {probe: p}}\n  in: {component: source.memory, config: {probe: p}}\n"
            "  out: {component: sink.memory, config: {probe: p}}\nedges: [in -> out]\n", &spec);
    EXPECT_EQ(spec.nodes.size(), 2u) << "a repeated node is built once";
}

// Twelve lines of nested aliases stand for 10^11 values: refused at once, not walked for hours.
TEST(PipelineErrors, NestedAliasesThatExpandBeyondAnyPipelineAreRefusedNamingThem) {
    Harness h;
    std::string text = "version: 1\nx0: &a0 [\"lol\"]\n";
    for (int level = 1; level < 12; ++level) {
        text += "x" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
        for (int i = 0; i < 10; ++i) text += (i ? ",*a" : "*a") + std::to_string(level - 1);
        text += "]\n";
    }
    text += "nodes:\n  in: {component: source.memory, config: {probe: p}}\n  out: {component: sink.memory, config: {probe: p}}\n"
            "edges: [in -> out]\n";
    auto issues = h.check(text);
    ASSERT_EQ(issues.size(), 1u) << ::testing::PrintToString(issues);
    EXPECT_THAT(issues[0], ::testing::StartsWith("p.yaml:")) << issues[0];
    EXPECT_THAT(issues[0], ::testing::HasSubstr("expands to more than 100000 values")) << issues[0];
    EXPECT_THAT(issues[0], ::testing::HasSubstr("YAML aliases (*name)")) << issues[0];
    // A few aliases, as people use them to share a config block, are fine.
    EXPECT_THAT(h.check(R"(
nodes:
  in: {component: source.memory, config: &probe {probe: p}}
  out: {component: sink.memory, config: *probe}
edges: [in -> out]
)"), ::testing::IsEmpty());
}

TEST(PipelineErrors, ATabInTheIndentationIsNamed) {
    Harness h;
    auto issues = h.check("nodes:\n\tin: {component: source.memory, config: {probe: p}}\nedges: []\n");
    ASSERT_FALSE(issues.empty());
    EXPECT_EQ(issues[0], "p.yaml:2:1: a tab in the indentation: YAML indents with spaces only (replace the tab with spaces)");
}

TEST(PipelineErrors, AnUnquotedReferenceInFlowStyleSaysToQuoteIt) {
    Harness h;
    auto issues = h.check("nodes:\n  in: {component: source.memory, config: {probe: ${P}}}\n  out: {component: sink.memory, config: {probe: p}}\n"
                          "edges: [in -> out]\n");
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_NE(issues[0].find("YAML syntax error"), std::string::npos) << issues[0];
    EXPECT_NE(issues[0].find("quote it"), std::string::npos) << issues[0];
}

TEST(PipelineErrors, AQuotedReferenceTakesTheTypeItsFieldWants) {
    setenv("DOCPIPE_TEST_CHILDREN", "3", 1);
    Harness h;
    core::PipelineSpec spec;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  split: {component: transform.split, config: {children: "${DOCPIPE_TEST_CHILDREN}"}}
  split2:
    component: transform.split
    config:
      children: '${DOCPIPE_TEST_UNSET_NUMBER:-4}'
  out: {component: sink.memory, config: {probe: "${DOCPIPE_TEST_CHILDREN}"}}
edges: [in -> split -> split2 -> out]
)", &spec);
    EXPECT_TRUE(issues.empty()) << issues.front();
    ASSERT_EQ(spec.nodes.size(), 4u);
    EXPECT_EQ(spec.nodes[1].config.get_int("children"), 3);
    EXPECT_EQ(spec.nodes[2].config.get_int("children"), 4);
    EXPECT_EQ(spec.nodes[3].config.get_string("probe"), "3") << "a string field still gets the text";
    unsetenv("DOCPIPE_TEST_CHILDREN");
}

TEST(PipelineErrors, AMissingPluginFolderIsNamedWhenAComponentIsNotFound) {
    Harness h;
    auto issues = h.check(R"(plugin_paths: [./no-such-plugins]
nodes:
  in: {component: source.memory, config: {probe: p}}
  count: {component: transform.word_count}
  out: {component: sink.memory, config: {probe: p}}
edges: [in -> count -> out]
)");
    ASSERT_FALSE(issues.empty());
    EXPECT_NE(issues[0].find("unknown component 'transform.word_count'"), std::string::npos) << issues[0];
    EXPECT_NE(issues[0].find("no-such-plugins' (line 1) does not exist"), std::string::npos) << issues[0];
}

TEST(PipelineErrors, TypeRangeEnumAndRequired) {
    Harness h;
    auto issues = h.check(R"(max_in_flight: lots
logging: {level: loud}
nodes:
  in: {component: source.memory, config: {}}
  split: {component: transform.split, config: {children: -1}}
  out:
    component: sink.memory
    retry: {attempts: many, initial_backoff: soon}
    config: {probe: p, fail_always: maybe}
edges: [in -> split -> out]
)");
    EXPECT_EQ(sorted(issues), sorted({
        "p.yaml:1:16: max_in_flight: expected a positive integer, got 'lots'",
        "p.yaml:2:18: logging.level: 'loud' is not one of: trace, debug, info, warn, error",
        "p.yaml:4:42: nodes.in.config.probe: missing required key 'probe' (string): probe name",
        "p.yaml:5:58: nodes.split.config.children: -1 is below the minimum 0",
        "p.yaml:8:23: nodes.out.retry.attempts: expected an integer, got 'many'",
        "p.yaml:8:46: nodes.out.retry.initial_backoff: expected a duration such as 500ms, 5s, 2m or 1h, got 'soon'",
        "p.yaml:9:37: nodes.out.config.fail_always: expected true or false, got 'maybe'",
    }));
}

TEST(PipelineErrors, UnknownComponentListsInstalledOnes) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  out: {component: sink.memroy}
edges: [in -> out]
)");
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(issues[0].rfind("p.yaml:3:3: nodes.out.component: unknown component 'sink.memroy' (did you mean 'sink.memory'?); installed: ", 0), 0u)
        << issues[0];
    EXPECT_NE(issues[0].find("transform.split"), std::string::npos) << issues[0];
}

TEST(PipelineErrors, UnknownComponentNamesPluginsThatFailedToLoad) {
    Harness h;
    const auto bogus = h.dir.path() / "libbroken.so";
    { std::ofstream(bogus) << "not an ELF file"; }
    ASSERT_FALSE(h.registry->load_file(bogus));
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  out: {component: sink.ncb}
edges: [in -> out]
)");
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_NE(issues[0].find("; plugin " + bogus.string() + " failed to load: cannot load: "), std::string::npos) << issues[0];
}

TEST(PipelineErrors, EdgesNodesPortsAndDirections) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  route: {component: transform.route}
  a: {component: sink.memory, config: {probe: p}}
  b: {component: sink.memory, config: {probe: p}}
edges:
  - in -> route
  - route.evn -> a
  - route -> b
  - route.odd -> bb
  - a -> in
)");
    EXPECT_EQ(sorted(issues), sorted({
        "p.yaml:8:5: edges: route.evn -> a: 'route' (transform.route) has no output port 'evn' (did you mean 'even'?); ports: even, odd",
        "p.yaml:9:5: edges: route -> b: 'route' (transform.route) has no 'out' port; name one of its ports: even, odd (e.g. route.even -> b)",
        "p.yaml:10:18: edges: route.odd -> bb: unknown node 'bb' (did you mean 'b'?)",
        "p.yaml:11:10: edges: a -> in: 'in' is a source (source.memory) and takes no input",
    })) << "the broken edges only: their consequences (ports not connected, nodes not reached) would come first in the file";
}

// Listed twice, an edge sent each document down it twice: two lines in one sink's file.
TEST(PipelineErrors, TheSameEdgeTwiceIsRefused) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  a: {component: sink.memory, config: {probe: p}}
edges:
  - in -> a
  - in.out -> a
)");
    EXPECT_EQ(issues, std::vector<std::string>{
        "p.yaml:6:5: edges: in.out -> a: the edge in.out -> a is listed twice; each document would reach 'a' twice: remove one"});
}

TEST(PipelineErrors, OnceTheEdgesAreRightAnOpenPortAndAnUnreachedNodeAreReported) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  route: {component: transform.route}
  a: {component: sink.memory, config: {probe: p}}
  b: {component: sink.memory, config: {probe: p}}
edges:
  - in -> route
  - route.even -> a
)");
    EXPECT_EQ(sorted(issues), sorted({
        "p.yaml:3:3: nodes.route: output port 'route.odd' is not connected; documents sent there would be lost (add an edge such as 'route.odd -> <node>'; to drop them on purpose, send them to a node with component: sink.discard)",
        "p.yaml:5:3: nodes.b: node 'b' is not reached from any source; connect it or remove it",
    }));
}

TEST(PipelineErrors, CycleIsReportedWithItsPath) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  a: {component: transform.split}
  b: {component: transform.split}
  out: {component: sink.memory, config: {probe: p}}
edges:
  - in -> a -> b -> a
  - b -> out
)");
    // At the edge that closes the loop (line 7, column 16: `b -> a`), not at node a's line.
    EXPECT_THAT(issues, ElementsAre("p.yaml:7:16: edges: cycle: a -> b -> a (documents would loop forever); the edge b -> a closes it"));
}

TEST(PipelineErrors, NoSourceAndUnreachableNodes) {
    Harness h;
    auto issues = h.check(R"(nodes:
  a: {component: transform.split}
  out: {component: sink.memory, config: {probe: p}}
edges: [a -> out]
)");
    EXPECT_THAT(issues, ElementsAre("p.yaml:2:3: nodes: the pipeline has no source node (a component of kind 'source', e.g. source.directory)"));
}

// "max_in_flight:" and "concurrency:" with no value were "expected a positive integer, got 'a
// collection'", at the line after; an empty key takes its default, as a config key does.
TEST(PipelineErrors, AnEmptyMaxInFlightOrConcurrencyTakesItsDefault) {
    Harness h;
    core::PipelineSpec spec;
    auto issues = h.check(R"(max_in_flight:
nodes:
  in: {component: source.memory, config: {probe: p}}
  out:
    component: sink.memory
    concurrency:
    config: {probe: p}
edges: [in -> out]
)", &spec);
    EXPECT_TRUE(issues.empty()) << ::testing::PrintToString(issues);
    EXPECT_EQ(spec.max_in_flight, 64u);
    ASSERT_NE(spec.find("out"), nullptr);
    EXPECT_EQ(spec.find("out")->concurrency, 1);
}

TEST(PipelineErrors, ConcurrencyOnAComponentThatIsNotConcurrentSafe) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  r: {component: transform.route, concurrency: 4}
  out: {component: sink.memory, config: {probe: p}}
edges: [in -> r, r.even -> out, r.odd -> out]
)");
    EXPECT_THAT(issues, ElementsAre("p.yaml:3:3: nodes.r.concurrency: concurrency 4 requested, but component 'transform.route' "
                                    "does not allow concurrent calls on one instance; use concurrency: 1"));
}

TEST(PipelineErrors, AllErrorsAreReportedAtOnce) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p, extra: 1}}
  out: {component: sink.memory, config: {probe: p, block: perhaps}}
  x: {component: nope.nothing}
edges: [in -> out, in -> y]
)");
    EXPECT_EQ(issues.size(), 4u) << ::testing::PrintToString(issues);
}

// ---- substitution ------------------------------------------------------------------------

// Values only the store or the admin server refused, at start ("cannot start: state store
// (redis): cannot parse url"): `validate` said "valid" and `run` then refused the file.
TEST(PipelineErrors, AStateUrlOrAdminAddressRunWouldRefuseIsAnIssueWithItsLine) {
    Harness h;
    auto issues = h.check(R"(state: {backend: redis, url: "http://localhost:6399"}
admin: {listen: localhost}
nodes:
  in: {component: source.memory, config: {probe: p}}
  out: {component: sink.memory, config: {probe: q}}
edges: [in -> out]
)");
    ASSERT_EQ(issues.size(), 2u) << ::testing::PrintToString(issues);
    EXPECT_EQ(sorted(issues), sorted({
        "p.yaml:1:30: state.url: redis: cannot parse url: it must start with redis:// (redis://[:password@]host:port/db)",
        "p.yaml:2:17: admin.listen: admin.listen 'localhost' must be host:port, e.g. 127.0.0.1:8080",
    }));
}

TEST(PipelineErrors, AFolderNamedAsThePipelineIsSaidToBeAFolder) {
    Harness h;
    std::vector<core::Issue> issues;
    core::load_pipeline(h.dir.path(), issues);
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_NE(issues[0].message.find("is a folder, not a pipeline file"), std::string::npos) << issues[0].message;
}

TEST(PipelineErrors, ANegativeDurationIsSaidToBeNegative) {
    Harness h;
    auto issues = h.check(R"(runtime: {drain_timeout: -5s}
nodes:
  in: {component: source.memory, config: {probe: p}}
  out: {component: sink.memory, config: {probe: q}}
edges: [in -> out]
)");
    ASSERT_EQ(issues.size(), 1u) << ::testing::PrintToString(issues);
    EXPECT_NE(issues[0].find("a duration cannot be negative, got '-5s'"), std::string::npos) << issues[0];
}

TEST(Substitution, VariablesDefaultsFilesAndEscapes) {
    Harness h;
    setenv("DOCPIPE_TEST_PROBE", "from-env", 1);
    unsetenv("DOCPIPE_TEST_UNSET");
    const auto secret = h.dir.path() / "secret";
    { std::ofstream(secret) << "s3cr3t\n"; }
    std::string error;
    EXPECT_EQ(*core::substitute("${DOCPIPE_TEST_PROBE}", error), "from-env");
    EXPECT_EQ(*core::substitute("a-${DOCPIPE_TEST_UNSET:-fallback}-b", error), "a-fallback-b");
    EXPECT_EQ(*core::substitute("${file:" + secret.string() + "}", error), "s3cr3t") << "trailing newline dropped";
    EXPECT_EQ(*core::substitute("$${LITERAL}", error), "${LITERAL}");
    EXPECT_FALSE(core::substitute("${DOCPIPE_TEST_UNSET}", error));
    EXPECT_EQ(error, "environment variable 'DOCPIPE_TEST_UNSET' is not set and has no default (set it, or write "
                     "${DOCPIPE_TEST_UNSET:-default})");
    setenv("DOCPIPE_TEST_EMPTY", "", 1);
    EXPECT_FALSE(core::substitute("${DOCPIPE_TEST_EMPTY}", error));
    EXPECT_NE(error.find("'DOCPIPE_TEST_EMPTY' is set but empty"), std::string::npos) << error;
    unsetenv("DOCPIPE_TEST_EMPTY");
    EXPECT_FALSE(core::substitute("${file:/nonexistent/key}", error));
    EXPECT_EQ(error, "cannot read secret file '/nonexistent/key' named by ${file:...}");
    EXPECT_FALSE(core::substitute("${file:" + h.dir.path().string() + "}", error)) << "a folder reads as nothing";
    EXPECT_NE(error.find("is a folder, not a file"), std::string::npos) << error;
    // A named pipe blocked validation until something wrote to it; /dev/zero was read until
    // memory ran out.
    const auto pipe = h.dir.path() / "pipe";
    ASSERT_EQ(mkfifo(pipe.c_str(), 0600), 0);
    EXPECT_FALSE(core::substitute("${file:" + pipe.string() + "}", error));
    EXPECT_NE(error.find("is not a regular file (a pipe, socket or device)"), std::string::npos) << error;
    EXPECT_FALSE(core::substitute("${file:/dev/zero}", error));
    EXPECT_NE(error.find("'/dev/zero' named by ${file:...} is not a regular file"), std::string::npos) << error;
    const auto big = h.dir.path() / "big";
    { std::ofstream(big) << std::string((1 << 20) + 1, 'k'); }
    EXPECT_FALSE(core::substitute("${file:" + big.string() + "}", error));
    EXPECT_NE(error.find("is 1048577 bytes; a value read from a file may be at most 1048576 bytes"), std::string::npos) << error;
    EXPECT_FALSE(core::substitute("${oops", error));
    // Nested: systemd's credentials folder from the environment, a default holding a reference.
    setenv("DOCPIPE_TEST_CREDS", h.dir.path().c_str(), 1);
    EXPECT_EQ(*core::substitute("${file:${DOCPIPE_TEST_CREDS}/secret}", error), "s3cr3t");
    EXPECT_EQ(*core::substitute("${DOCPIPE_TEST_UNSET:-${DOCPIPE_TEST_PROBE}}/x", error), "from-env/x");
    EXPECT_EQ(*core::substitute("${DOCPIPE_TEST_PROBE:-${DOCPIPE_TEST_UNSET}}", error), "from-env") << "an unused default is not expanded";
    EXPECT_FALSE(core::substitute("${file:${DOCPIPE_TEST_UNSET}/secret}", error));
    unsetenv("DOCPIPE_TEST_CREDS");
}

TEST(Substitution, AppliesInsidePipelinesAndReportsThePosition) {
    Harness h;
    setenv("DOCPIPE_TEST_PROBE", "from-env", 1);
    unsetenv("DOCPIPE_TEST_UNSET");
    core::PipelineSpec spec;
    auto issues = h.check(R"(max_in_flight: ${DOCPIPE_TEST_UNSET:-7}
nodes:
  in: {component: source.memory, config: {probe: "${DOCPIPE_TEST_PROBE}"}}
  out:
    component: sink.memory
    config:
      probe: ${DOCPIPE_TEST_UNSET}
edges: [in -> out]
)", &spec);
    EXPECT_THAT(issues, ElementsAre("p.yaml:7:14: nodes.out.config.probe: environment variable 'DOCPIPE_TEST_UNSET' is not set "
                                    "and has no default (set it, or write ${DOCPIPE_TEST_UNSET:-default})"));
    EXPECT_EQ(spec.max_in_flight, 7u) << "a substituted number keeps its type";
    EXPECT_EQ(spec.nodes[0].config.get_string("probe"), "from-env");
}

TEST(PipelineDot, RendersNodesEdgesAndPorts) {
    Harness h;
    core::PipelineSpec spec;
    ASSERT_TRUE(h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  route: {component: transform.route}
  out: {component: sink.memory, concurrency: 2, config: {probe: p}}
edges: [in -> route, route.even -> out, route.odd -> out]
)", &spec).empty());
    const std::string dot = core::to_dot(spec);
    EXPECT_NE(dot.find("\"in\" [label=\"in\\nsource.memory\", shape=invhouse];"), std::string::npos) << dot;
    EXPECT_NE(dot.find("\"out\" [label=\"out\\nsink.memory x2\", shape=house];"), std::string::npos) << dot;
    EXPECT_NE(dot.find("\"route\" -> \"out\" [label=\"even\"];"), std::string::npos) << dot;
    EXPECT_NE(dot.find("\"in\" -> \"route\";"), std::string::npos) << dot;
}

TEST(PipelineErrors, ApprovedNodeMustBeAReceivingNode) {
    Harness h;
    const std::string nodes = R"(
nodes:
  in: {component: source.memory, config: {probe: p}}
  out: {component: sink.memory, config: {probe: p}}
edges: [in -> out]
)";
    EXPECT_THAT(h.check("admin: {approved_node: ot}" + nodes),
                ElementsAre("p.yaml:1:8: admin.approved_node: unknown node 'ot' (did you mean 'out'?)"));
    EXPECT_THAT(h.check("admin: {approved_node: in}" + nodes),
                ElementsAre("p.yaml:1:8: admin.approved_node: 'in' is a source and takes no input; name the node approved documents go "
                            "to (e.g. the NCB sink)"));
    EXPECT_TRUE(h.check("admin: {approved_node: out}" + nodes).empty());
}

// Found by a probe of `docpipe validate`: each passed (or failed with a misleading message)
// and the run then lost state, dropped a setting or a document.
TEST(PipelineErrors, AnEmptySqlitePathIsRefused_ItWouldKeepTheStateInATemporaryDatabase) {
    Harness h;
    const std::string nodes = "\nnodes:\n  in: {component: source.memory, config: {probe: p}}\n  out: {component: sink.memory, config: {probe: p}}\n"
                              "edges: [in -> out]\n";
    EXPECT_THAT(h.check("state: {backend: sqlite, path: ''}" + nodes),
                ElementsAre(::testing::StartsWith("p.yaml:1:32: state.path: empty: SQLite would keep the state in a temporary database "
                                                  "that is lost at exit")));
    EXPECT_TRUE(h.check("state: {backend: memory, path: ''}" + nodes).empty()) << "memory keeps nothing on purpose";
}

TEST(PipelineErrors, ASecondYamlDocumentIsRefusedNotIgnored) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  out: {component: sink.memory, config: {probe: p}}
edges: [in -> out]
---
nodes:
  extra: {component: transform.pass}
)");
    EXPECT_THAT(issues, ElementsAre(::testing::StartsWith("p.yaml:6:1: the file holds 2 YAML documents (separated by '---')")));
}

TEST(PipelineErrors, AMaxBackoffUnderTheInitialBackoffIsRefused) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  out: {component: sink.memory, retry: {initial_backoff: 1h, max_backoff: 1s}, config: {probe: p}}
edges: [in -> out]
)");
    EXPECT_THAT(issues, ElementsAre("p.yaml:3:75: nodes.out.retry.max_backoff: 1s is under initial_backoff (1h): it caps every wait, "
                                    "the first included; raise it or lower initial_backoff"));
}

// YAML merge keys, as Compose reads them: yaml-cpp took "<<" for a key the config did not know.
TEST(PipelineErrors, MergeKeysAndXBlocksShareSettingsBetweenNodes) {
    Harness h;
    core::PipelineSpec spec;
    auto issues = h.check(R"(x-retry: &patient {attempts: 7, initial_backoff: 2s}
x-probe: &probe {probe: p}
nodes:
  in: {component: source.memory, config: *probe}
  out:
    component: sink.memory
    retry:
      <<: *patient
      attempts: 2
    config: {<<: *probe}
edges: [in -> out]
)",
                          &spec);
    ASSERT_TRUE(issues.empty()) << issues.front();
    const auto* out = spec.find("out");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->retry.attempts, 2) << "the mapping's own key wins";
    EXPECT_EQ(out->retry.initial_backoff, std::chrono::seconds(2)) << "merged";
    EXPECT_THAT(h.check("nodes:\n  in: {component: source.memory, config: {<<: 3}}\n  out: {component: sink.memory, config: {probe: p}}\n"
                        "edges: [in -> out]\n"),
                ::testing::Contains(::testing::HasSubstr("a merge key takes a mapping or a list of mappings")));
}

// An unset variable: its own message, not a second one about the raw ${...} text.
TEST(PipelineErrors, AnUnsetVariableIsOneProblemNotTwo) {
    Harness h;
    ::unsetenv("DOCPIPE_TEST_SURELY_UNSET");
    auto issues = h.check(R"(max_in_flight: ${DOCPIPE_TEST_SURELY_UNSET}
nodes:
  in: {component: source.memory, config: {probe: "${DOCPIPE_TEST_SURELY_UNSET}"}}
  out: {component: sink.memory, retry: {attempts: "${DOCPIPE_TEST_SURELY_UNSET}"}, config: {probe: p}}
edges: [in -> out]
)");
    ASSERT_EQ(issues.size(), 3u) << ::testing::PrintToString(issues);
    for (const auto& i : issues) EXPECT_THAT(i, ::testing::HasSubstr("environment variable 'DOCPIPE_TEST_SURELY_UNSET' is not set"));
}

TEST(PipelineErrors, AHugeFileWithoutAliasesIsNotBlamedOnAliases) {
    Harness h;
    std::string edges = "edges: [";
    for (int i = 0; i < 100'001; ++i) edges += "a, ";
    auto issues = h.check("nodes: {}\n" + edges + "]\n");
    ASSERT_FALSE(issues.empty());
    EXPECT_THAT(issues[0], ::testing::HasSubstr("the file holds more than 100000 values by this point"));
    EXPECT_THAT(issues[0], ::testing::Not(::testing::HasSubstr("aliases")));
    EXPECT_THAT(h.check(std::string(3 * 1024 * 1024, '#')),
                ElementsAre(::testing::HasSubstr("is 3.0 MB; a pipeline file is a few kilobytes (at most 2 MB): is this the right file?")));
}

// A broken edge hides its own consequences (the ports and nodes it names, and what follows
// them), not the rest of the graph: "prints every problem at once" held only after the edge
// was fixed (found by a probe).
TEST(PipelineErrors, ABrokenEdgeDoesNotHideUnrelatedProblems) {
    Harness h;
    auto issues = h.check(R"(nodes:
  in: {component: source.memory, config: {probe: p}}
  route: {component: transform.route}
  out: {component: sink.memory, config: {probe: p}}
  after: {component: sink.memory, config: {probe: p}}
  lonely: {component: sink.memory, config: {probe: p}}
  fan: {component: transform.route}
edges: [in -> route, route.evn -> out, out.accepted -> after, in -> fan, fan.even -> out]
)");
    EXPECT_EQ(sorted(issues), sorted({
        "p.yaml:8:22: edges: route.evn -> out: 'route' (transform.route) has no output port 'evn' (did you mean 'even'?); ports: even, odd",
        "p.yaml:6:3: nodes.lonely: node 'lonely' is not reached from any source; connect it or remove it",
        "p.yaml:7:3: nodes.fan: output port 'fan.odd' is not connected; documents sent there would be lost (add an edge such as "
        "'fan.odd -> <node>'; to drop them on purpose, send them to a node with component: sink.discard)",
    })) << "route's other port and what follows out are the typo's business; lonely and fan.odd are not";
}

// Found by a re-probe: an alias inside its own anchor nested for ever and took the process
// down (SIGSEGV) in validate, graph and run, even unused in an x- block.
TEST(PipelineErrors, AnAliasInsideItsOwnAnchorIsRefusedNotFollowedForEver) {
    Harness h;
    for (const char* cycle : {"x-a: &a {k: *a}\n", "x-a: &a [*a]\n", "x-a: &a {<<: *a}\n"}) {
        auto issues = h.check(std::string(cycle) + "nodes:\n  in: {component: source.memory, config: {probe: p}}\n"
                                                   "  out: {component: sink.memory, config: {probe: p}}\nedges: [in -> out]\n");
        ASSERT_EQ(issues.size(), 1u) << cycle;
        EXPECT_THAT(issues[0], ::testing::HasSubstr("nests more than 200 levels deep by this point: an alias inside its own anchor"))
            << cycle;
    }
}

// A key that came in through a merge keeps the anchor's line:column in its errors, and an
// unknown node's suggestion is never a node named "" (it read "did you mean ''?").
TEST(PipelineErrors, MergedKeysKeepTheirPlaceAndNoEmptyNameIsSuggested) {
    Harness h;
    auto issues = h.check(R"(x-probe: &probe {probe: p, bogus_option: 1}
nodes:
  in: {component: source.memory, config: {<<: *probe}}
  out: {component: sink.memory, config: {probe: p}}
edges: [in -> out]
)");
    EXPECT_THAT(issues, ElementsAre(::testing::StartsWith("p.yaml:1:28: nodes.in.config.bogus_option: unknown key 'bogus_option'")));
    issues = h.check(R"(nodes:
  "": {component: transform.pass}
  inbox: {component: source.memory, config: {probe: p}}
  out: {component: sink.memory, config: {probe: p}}
edges: [in.box -> out]
)");
    for (const auto& i : issues) EXPECT_THAT(i, ::testing::Not(::testing::HasSubstr("did you mean ''"))) << i;
    EXPECT_THAT(h.check("state: {backend: sqlite, path: '  '}\nnodes:\n  in: {component: source.memory, config: {probe: p}}\n"
                        "  out: {component: sink.memory, config: {probe: p}}\nedges: [in -> out]\n"),
                ::testing::Contains(::testing::HasSubstr("state.path: empty: SQLite would keep the state in a temporary database")));
}
