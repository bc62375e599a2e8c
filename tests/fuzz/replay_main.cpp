// Replays a fuzz corpus through a target in the normal (gcc) build, where libFuzzer is not
// available: `<target>_replay DIR...` runs LLVMFuzzerTestOneInput once over every file in
// each DIR, in name order (so a failure reproduces the same way every time).
//
// Why our own main: ctest runs these on every `make test`, so every input a fuzzer ever
// kept — including the ones that crashed it once — stays a regression test without clang.
// Each file's name is printed before it runs, so a crash or sanitizer report names its input.
// An empty or missing directory fails: a corpus that went missing must not pass silently.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    namespace fs = std::filesystem;
    for (int a = 1; a < argc; ++a) {
        const fs::path dir = argv[a];
        std::vector<fs::path> files;
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
            if (it->is_regular_file()) files.push_back(it->path());
        if (ec) {
            std::fprintf(stderr, "%s: cannot read the corpus directory: %s\n", dir.c_str(), ec.message().c_str());
            return 1;
        }
        if (files.empty()) {
            std::fprintf(stderr, "%s: the corpus directory is empty\n", dir.c_str());
            return 1;
        }
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
            std::printf("replay: %s\n", file.c_str());
            std::fflush(stdout);  // before the input runs, so a crash still shows which one
            std::ifstream in(file, std::ios::binary);
            const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            if (!in.good() && !in.eof()) {
                std::fprintf(stderr, "%s: cannot read\n", file.c_str());
                return 1;
            }
            // A copy in its own allocation of exactly `size` bytes, as libFuzzer passes it, so
            // ASan builds see a read past the end.
            std::vector<std::uint8_t> input(bytes.begin(), bytes.end());
            LLVMFuzzerTestOneInput(input.data(), input.size());
        }
        std::printf("replay: %zu input(s) from %s ran without a crash\n", files.size(), dir.c_str());
    }
    return 0;
}
