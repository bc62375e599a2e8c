#include "failpoints.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

namespace docpipe::core {

namespace {
const std::string& configured() {
    static const std::string points = [] {
        const char* env = std::getenv("DOCPIPE_FAILPOINTS");
        return env ? "," + std::string(env) + "," : std::string();
    }();
    return points;
}
}  // namespace

namespace detail {

bool failpoints_configured() { return !configured().empty(); }

void reach_failpoint(const char* name) {
    const std::string& points = configured();
    if (points.empty()) return;
    if (points.find("," + std::string(name) + ",") == std::string::npos) return;
    static const char kMessage[] = "docpipe: fail point reached, killing the process\n";
    [[maybe_unused]] auto n = ::write(2, kMessage, sizeof kMessage - 1);
    ::kill(::getpid(), SIGKILL);
}

}  // namespace detail

}  // namespace docpipe::core
