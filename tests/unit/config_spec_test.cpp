// ConfigSpec: typed fields, defaults, ranges, enums, secrets, and "no free-form lookups".
#include <gtest/gtest.h>

#include "docpipe/component.hpp"
#include "docpipe/config_spec.hpp"

using namespace docpipe;
using namespace std::chrono_literals;

namespace {
ConfigSpec spec() {
    return ConfigSpec{
        Field::string("path").required().describe("where"),
        Field::integer("workers").default_value(2).min(1).max(16),
        Field::number("threshold").default_value(0.9).min(0).max(1),
        Field::boolean("verbose").default_value(false),
        Field::duration("timeout").default_value("5s").min(0.1),
        Field::string_list("patterns").default_value(nlohmann::json::array({"*"})),
        Field::enumeration("mode", {"fast", "accurate"}).default_value("fast"),
        Field::string("token").secret(),
        Field::object("extra"),
    };
}

std::vector<std::string> issues_for(const std::string& yaml) {
    ConfigSpec s = spec();
    std::vector<ConfigIssue> issues;
    parse_config_yaml(s, yaml, issues);
    std::vector<std::string> out;
    for (const auto& i : issues) out.push_back(std::to_string(i.line) + ":" + std::to_string(i.column) + " " + i.path + ": " + i.message);
    return out;
}
}  // namespace

TEST(ConfigSpec, DefaultsAreAppliedAndTyped) {
    ConfigSpec s = spec();
    std::vector<ConfigIssue> issues;
    Config c = parse_config_yaml(s, "path: /in\ntoken: abc\nextra: {a: 1}", issues);
    ASSERT_TRUE(issues.empty());
    EXPECT_EQ(c.get_string("path"), "/in");
    EXPECT_EQ(c.get_int("workers"), 2);
    EXPECT_DOUBLE_EQ(c.get_number("threshold"), 0.9);
    EXPECT_FALSE(c.get_bool("verbose"));
    EXPECT_EQ(c.get_duration("timeout"), 5s);
    EXPECT_EQ(c.get_string_list("patterns"), std::vector<std::string>{"*"});
    EXPECT_EQ(c.get_string("mode"), "fast");
    EXPECT_EQ(c.get_object("extra")["a"], 1);
    EXPECT_EQ(c.to_json()["token"], "******") << "secrets are masked in dumps";
    EXPECT_EQ(c.to_json(true)["token"], "abc");
}

TEST(ConfigSpec, UndeclaredOrMistypedLookupsThrow) {
    ConfigSpec s = spec();
    std::vector<ConfigIssue> issues;
    Config c = parse_config_yaml(s, "path: /in", issues);
    EXPECT_THROW(c.get_string("not_declared"), std::logic_error);
    EXPECT_THROW(c.get_int("path"), std::logic_error);
    EXPECT_FALSE(c.has("token"));
    EXPECT_THROW(c.get_string("token"), std::logic_error);
}

TEST(ConfigSpec, ValidationMessages) {
    EXPECT_EQ(issues_for("path: /in\nworkers: 0"), std::vector<std::string>{"2:10 config.workers: 0 is below the minimum 1"});
    EXPECT_EQ(issues_for("path: /in\nworkers: 99"), std::vector<std::string>{"2:10 config.workers: 99 is above the maximum 16"});
    EXPECT_EQ(issues_for("path: /in\nworkers: two"), std::vector<std::string>{"2:10 config.workers: expected an integer, got 'two'"});
    EXPECT_EQ(issues_for("path: /in\nthreshold: 1.5"), std::vector<std::string>{"2:12 config.threshold: 1.5 is above the maximum 1"});
    EXPECT_EQ(issues_for("path: /in\nverbose: yes please"),
              std::vector<std::string>{"2:10 config.verbose: expected true or false, got 'yes please'"});
    EXPECT_EQ(issues_for("path: /in\ntimeout: 10ms"), std::vector<std::string>{"2:10 config.timeout: 10ms is below the minimum 0.1 s"});
    EXPECT_EQ(issues_for("path: /in\nmode: fats"),
              std::vector<std::string>{"2:7 config.mode: 'fats' is not one of: fast, accurate (did you mean 'fast'?)"});
    EXPECT_EQ(issues_for("path: [a, b]"), std::vector<std::string>{"1:7 config.path: expected a string, got a list"});
    EXPECT_EQ(issues_for("path: /in\nextra: 3"), std::vector<std::string>{"2:8 config.extra: expected a mapping, got '3'"});
    EXPECT_EQ(issues_for("workers: 3"), std::vector<std::string>{"1:1 config.path: missing required key 'path' (string): where"});
    EXPECT_EQ(issues_for("path: ''"), std::vector<std::string>{"1:7 config.path: 'path' is required and cannot be empty or blank: where"});
    EXPECT_EQ(issues_for("path: '   '"), std::vector<std::string>{"1:7 config.path: 'path' is required and cannot be empty or blank: where"});
    EXPECT_EQ(issues_for("path: /in\npaths: x"), std::vector<std::string>{"2:1 config.paths: unknown key 'paths' (did you mean 'path'?)"});
    EXPECT_EQ(issues_for("path: /in\nzzzzzz: x"),
              std::vector<std::string>{"2:1 config.zzzzzz: unknown key 'zzzzzz'; known keys: path, workers, threshold, verbose, "
                                       "timeout, patterns, mode, token, extra"});
}

// A rule across fields (Benthos' lint rules): run once every field is valid, reported at its
// key's line, and listed by describe. Before, such checks lived in constructors only, so
// `docpipe validate` passed what `run` refused.
TEST(ConfigSpec, RulesAcrossFieldsRunOnceTheFieldsAreValid) {
    ConfigSpec s = spec();
    int runs = 0;
    s.rule("workers", "workers is at most 4 in accurate mode", [&](const Config& c) -> std::string {
        ++runs;
        return c.get_string("mode") == "accurate" && c.get_int("workers") > 4 ? "accurate mode takes at most 4 workers" : "";
    });
    const auto issues_with_rule = [&](const std::string& yaml) {
        std::vector<ConfigIssue> issues;
        parse_config_yaml(s, yaml, issues);
        std::vector<std::string> out;
        for (const auto& i : issues) out.push_back(std::to_string(i.line) + ":" + std::to_string(i.column) + " " + i.path + ": " + i.message);
        return out;
    };
    EXPECT_EQ(issues_with_rule("path: /in\nmode: accurate\nworkers: 8"),
              std::vector<std::string>{"3:10 config.workers: accurate mode takes at most 4 workers"});
    EXPECT_TRUE(issues_with_rule("path: /in\nmode: accurate\nworkers: 3").empty());
    EXPECT_TRUE(issues_with_rule("path: /in\nworkers: 8").empty());
    runs = 0;
    EXPECT_EQ(issues_with_rule("mode: accurate\nworkers: 8").size(), 1u) << "only the missing path: the rule waits for valid fields";
    EXPECT_EQ(runs, 0);
    ComponentDescriptor d;
    d.name = "transform.x";
    d.config = s;
    EXPECT_EQ(d.to_json()["config_rules"], nlohmann::json::parse(R"([{"key":"workers","description":"workers is at most 4 in accurate mode"}])"));
}

TEST(ConfigSpec, QuotedNumbersStayStrings) {
    ConfigSpec s{Field::string("code").required()};
    std::vector<ConfigIssue> issues;
    Config c = parse_config_yaml(s, "code: '007'", issues);
    ASSERT_TRUE(issues.empty());
    EXPECT_EQ(c.get_string("code"), "007");
}

TEST(ConfigSpec, DescribeJsonCarriesEverything) {
    auto j = spec().to_json();
    EXPECT_EQ(j[0]["name"], "path");
    EXPECT_EQ(j[0]["required"], true);
    EXPECT_EQ(j[1]["min"], 1);
    EXPECT_EQ(j[6]["enum"], nlohmann::json::array({"fast", "accurate"}));
    EXPECT_EQ(j[7]["secret"], true);
    // A secret's default is masked, unless it is empty: "******" read as a built-in password.
    EXPECT_EQ(ConfigSpec{Field::string("password").secret().default_value("")}.to_json()[0]["default"], "");
    EXPECT_EQ(ConfigSpec{Field::string("password").secret().default_value("hunter2")}.to_json()[0]["default"], "******");
}

TEST(ConfigSpec, DuplicateFieldIsAProgrammingError) {
    ConfigSpec s{Field::string("a")};
    EXPECT_THROW(s.add(Field::integer("a")), std::logic_error);
}

// describe showed a default the field's own rules refuse, and the component was given it,
// while the same value written in a pipeline was an error: a default must be a value the
// field accepts, or the plugin is refused at load with this error.
TEST(ConfigSpec, ADefaultTheFieldWouldRefuseIsAProgrammingError) {
    const auto refused = [](Field f) -> std::string {
        try {
            ConfigSpec s{std::move(f)};
        } catch (const std::logic_error& e) {
            return e.what();
        }
        return "accepted";
    };
    EXPECT_EQ(refused(Field::integer("level").default_value(50).min(1).max(10)),
              "config field 'level': its default 50 is above its maximum 10; a default must be a value the field accepts");
    EXPECT_EQ(refused(Field::enumeration("mode", {"a", "b"}).default_value("zzz")),
              "config field 'mode': its default 'zzz' is not one of its values (a, b); a default must be a value the field accepts");
    EXPECT_EQ(refused(Field::duration("wait").default_value("5s").min(10)),
              "config field 'wait': its default 5s is below its minimum 10 s; a default must be a value the field accepts");
    EXPECT_EQ(refused(Field::duration("wait").default_value("-5s")),
              "config field 'wait': its default '-5s' is not a duration such as 500ms, 5s, 2m or 1h; a default must be a value the "
              "field accepts");
    EXPECT_EQ(refused(Field::integer("n").default_value("3")),
              "config field 'n': its default \"3\" is not an integer; a default must be a value the field accepts");
    EXPECT_EQ(refused(Field::duration("wait").default_value("5s").min(1).max(10)), "accepted");
    EXPECT_EQ(refused(Field::number("x").default_value(0.5).min(0).max(1)), "accepted");
}

// 200000d passed validation and overflowed the clock (a drain ended at once);
// 99999999999999999999d was reported "below the minimum 0 s".
TEST(ConfigSpec, ADurationOfYearsIsRefusedByName) {
    EXPECT_EQ(issues_for("path: /in\ntimeout: 200000d"),
              std::vector<std::string>{"2:10 config.timeout: '200000d' is longer than 3650d, the longest duration docpipe takes"});
    EXPECT_EQ(issues_for("path: /in\ntimeout: 99999999999999999999d"),
              std::vector<std::string>{
                  "2:10 config.timeout: '99999999999999999999d' is longer than 3650d, the longest duration docpipe takes"});
    EXPECT_TRUE(issues_for("path: /in\ntimeout: 3650d").empty());
}

TEST(Durations, Parse) {
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("5s"), 5s);
    EXPECT_EQ(parse_duration("1.5m"), 90s);
    EXPECT_EQ(parse_duration("2h"), 2h);
    EXPECT_EQ(parse_duration("3"), 3s);
    EXPECT_EQ(parse_duration("1d"), 24h);
    EXPECT_FALSE(parse_duration("fast"));
    EXPECT_FALSE(parse_duration("5 parsecs"));
    EXPECT_FALSE(parse_duration(""));
    EXPECT_FALSE(parse_duration("ms"));
}

TEST(DidYouMean, ClosestMatch) {
    EXPECT_EQ(closest_match("concurency", {"component", "concurrency", "config"}), "concurrency");
    EXPECT_EQ(closest_match("sink.fiels", {"sink.files", "source.directory"}), "sink.files");
    EXPECT_FALSE(closest_match("banana", {"component", "config"}));
}
