// `docpipe extract`: runs a pipeline's extraction path — every transform and OCR node,
// without its sources and sinks — on files given on the command line, and prints one JSON
// object per resulting document (JSON Lines). This is how people check what docpipe reads
// from a receipt, and what bench/claims_eval scores.
//
// Components are built from the pipeline's own config and started as the runtime would,
// with an in-memory state store (nothing is written to the pipeline's store) and
// transform.dedup left out (extracting the same file twice gives two answers). Files are
// worked on in parallel; the output keeps the order of the files given.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <vector>

#include "pipeline.hpp"

namespace docpipe::core {

struct ExtractOptions {
    unsigned jobs = 0;  // files at once; 0 = one per hardware thread
    std::string log_level = "warn";
    // A progress line on stderr while files are worked on, when stderr is a terminal.
    bool progress = false;
    // Larger files fail with the reason, unread (source.directory's max_bytes default).
    std::uint64_t max_bytes = 100ULL * 1024 * 1024;
    // Where the run's counters go at the end, in Prometheus text (page readings, turned pages,
    // rereads: what a benchmark counts besides the seconds); empty: not written.
    std::filesystem::path metrics_file;
};

// Returns 0 when every file gave at least one document, 1 when any failed or was skipped,
// 2 when the pipeline has no extraction path.
int extract_files(const PipelineSpec& spec, std::shared_ptr<const Registry> registry, const std::vector<std::filesystem::path>& files,
                  std::ostream& out, std::ostream& err, const ExtractOptions& options = {});

// The shipped claims pipeline: $DOCPIPE_PIPELINES/claims-local.yaml, then next to the
// binary (../share/docpipe/pipelines, ../../pipelines for a build tree), then the source
// tree this binary was built from. Empty when none exists.
std::filesystem::path default_claims_pipeline(const std::filesystem::path& executable);

}  // namespace docpipe::core
