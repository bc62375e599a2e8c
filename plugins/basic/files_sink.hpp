// sink.files — writes each document as JSON: one file per document (written to a temp file,
// fsynced and renamed, so a reader never sees half a file) or one line per document in a
// JSON Lines file (one write() per line with O_APPEND).
//
// Example config:
//   out:
//     component: sink.files
//     config:
//       path: ./out
//       format: json          # or jsonl
#pragma once

#include <filesystem>
#include <mutex>
#include <string>

#include "docpipe/component.hpp"

namespace docpipe::basic {

class FilesSink : public Sink {
public:
    static ComponentDescriptor describe();
    FilesSink(const Config& config, Context& context);

    void start() override;
    SinkResult write(const Document& doc) override;
    HealthReport health() override;

private:
    std::filesystem::path target_for(const Document& doc) const;
    SinkResult write_file(const Document& doc, const std::string& body);
    SinkResult append_line(const std::string& line);

    Context& ctx_;
    std::filesystem::path dir_;
    bool jsonl_;
    bool include_content_;
    bool fsync_;
    bool ncb_;                 // write the NCB claim record instead of the document
    int utc_offset_minutes_;
    std::string file_name_;
    std::mutex jsonl_mutex_;  // one appender at a time keeps lines whole on every filesystem
    std::mutex error_mutex_;
    std::string last_error_;
};

}  // namespace docpipe::basic
