// What every fuzz target here uses to state a property that must hold whatever the input.
//
// FUZZ_CHECK(condition) aborts when the condition is false, after printing which one, where:
// libFuzzer (and fuzz.replay.<name> under ctest) then reports the input as a crash, and the
// line says which property broke without a debugger. Header-only; no state; thread-safe.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace docpipe::fuzz {

[[noreturn]] inline void property_broken(const char* condition, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: property broken: %s\n", file, line, condition);
    std::abort();
}

}  // namespace docpipe::fuzz

#define FUZZ_CHECK(condition) ((condition) ? static_cast<void>(0) : ::docpipe::fuzz::property_broken(#condition, __FILE__, __LINE__))
