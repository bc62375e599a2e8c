// Tests the plugin exactly as the runtime loads it, with the SDK testing kit.
#include <gtest/gtest.h>

#include "docpipe/testing.hpp"

TEST(Hello, GreetsEachDocumentByName) {
    auto runner = docpipe::testing::NodeRunner::from_plugin(HELLO_PLUGIN, "transform.hello", "greeting: selamat pagi\nshout: true");
    auto out = runner.process(docpipe::Document::from_bytes("resit.jpg", "image/jpeg", {1, 2, 3}));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->fields["greeting"], "SELAMAT PAGI, resit.jpg");
    EXPECT_EQ(runner.context().counter("greetings_total"), 1);
}

TEST(Hello, RejectsUnknownConfig) {
    EXPECT_THROW(docpipe::testing::NodeRunner::from_plugin(HELLO_PLUGIN, "transform.hello", "greting: hi"), std::invalid_argument);
}
