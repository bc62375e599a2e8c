// A sink for crash tests (tests/e2e/crash_recovery.sh): writes each document as
// `<path>/<doc id>.json` (temp file + rename, so a rewrite after a restart replaces the
// file instead of adding one) and can kill its own process with SIGKILL after its N-th
// write, once: only while the `marker` file exists, which it deletes first, so the
// restarted process runs through.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "docpipe/plugin.hpp"

namespace {

namespace fs = std::filesystem;

class CrashFilesSink : public docpipe::Sink {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Sink;
        d.name = "sink.crash_files";
        d.summary = "test: writes <path>/<doc id>.json and can SIGKILL its own process after N writes";
        d.concurrent_safe = false;  // one write at a time; the counter is also guarded
        d.config = docpipe::ConfigSpec{
            docpipe::Field::string("path").required().describe("Output folder (created if missing)"),
            docpipe::Field::integer("kill_after_writes").default_value(0).min(0)
                .describe("SIGKILL this process after this many writes (0: never)"),
            docpipe::Field::string("marker")
                .describe("If set, only kill while this file exists; it is deleted before the kill"),
            docpipe::Field::string("journal")
                .describe("If set, one line '<doc id> <file name>' is appended per write: a second delivery shows as a second line"),
        };
        return d;
    }

    CrashFilesSink(const docpipe::Config& c, docpipe::Context&)
        : dir_(c.get_string("path")), kill_after_(c.get_int("kill_after_writes")), marker_(c.has("marker") ? c.get_string("marker") : ""),
          journal_(c.has("journal") ? c.get_string("journal") : "") {}

    void start() override { fs::create_directories(dir_); }

    docpipe::SinkResult write(const docpipe::Document& doc) override {
        std::lock_guard lock(mutex_);
        const fs::path target = dir_ / (doc.id + ".json");
        const fs::path temp = dir_ / ("." + doc.id + ".json." + std::to_string(::getpid()) + ".tmp");
        const std::string body = doc.to_json(false).dump(2) + "\n";
        int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return docpipe::SinkResult::retry(std::chrono::milliseconds(100), std::string("open: ") + std::strerror(errno));
        bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) && ::fsync(fd) == 0;
        ::close(fd);
        if (!ok || std::rename(temp.c_str(), target.c_str()) != 0) {
            ::unlink(temp.c_str());
            return docpipe::SinkResult::retry(std::chrono::milliseconds(100), "cannot write " + target.string());
        }
        ++writes_;
        if (!journal_.empty()) {
            const auto name = doc.attributes.count("filename") ? doc.attributes.at("filename") : std::string("-");
            const std::string line = doc.id + " " + name + "\n";
            const int jfd = ::open(journal_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            const bool logged = jfd >= 0 && ::write(jfd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
            if (jfd >= 0) ::close(jfd);
            if (!logged) return docpipe::SinkResult::fail("cannot append to the journal " + journal_);
        }
        if (kill_after_ > 0 && writes_ == kill_after_) {
            std::error_code ec;
            // The write happened; the runtime has not heard of it yet.
            if (marker_.empty() || (fs::remove(marker_, ec) && !ec)) ::kill(::getpid(), SIGKILL);
        }
        return docpipe::SinkResult::ok();
    }

private:
    std::mutex mutex_;
    fs::path dir_;
    std::int64_t kill_after_;
    std::int64_t writes_ = 0;
    std::string marker_;
    std::string journal_;
};

}  // namespace

// Turns an attachment into a claim without OCR, so delivery crash tests run in seconds:
// the amount comes from the attachment's bytes (stable across runs), the rest is fixed.
class TestClaimTransform : public docpipe::Transform {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Transform;
        d.name = "transform.test_claim";
        d.summary = "test: a complete claim (fields.claim) made from the attachment, no OCR";
        d.concurrent_safe = true;
        return d;
    }
    TestClaimTransform(const docpipe::Config&, docpipe::Context&) {}
    void process(const docpipe::DocumentPtr& input, docpipe::Outputs& out) override {
        auto doc = std::make_shared<docpipe::Document>(*input);
        std::size_t sum = 0;
        for (const auto& part : doc->parts)
            for (auto b : *part.bytes) sum = sum * 31 + static_cast<unsigned char>(b);
        const double amount = 10.0 + static_cast<double>(sum % 90000) / 100.0;
        const auto name = doc->attributes.count("filename") ? doc->attributes.at("filename") : doc->id;
        doc->fields["claim"] = {{"total_amount", {{"value", amount}, {"confidence", 0.97}}},
                                {"service_date", {{"value", "2024-12-24"}, {"confidence", 0.97}}},
                                {"receipt_number", {{"value", "R-" + name}, {"confidence", 0.97}}},
                                {"policy_number", {{"value", "POL123456789"}, {"confidence", 0.97}}}};
        doc->fields["confidence"] = 0.97;
        doc->fields["confidence_level"] = "high";
        out.emit(doc);
    }
};

// A non-claims transform: fields of its own (byte count and a tag), for tests of what
// `docpipe extract` prints when there is no claim.
class TestFieldsTransform : public docpipe::Transform {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Transform;
        d.name = "transform.test_fields";
        d.summary = "test: sets fields.bytes and fields.tag";
        d.concurrent_safe = true;
        d.config = docpipe::ConfigSpec{
            docpipe::Field::string("tag").default_value("t").describe("Written to fields.tag"),
            docpipe::Field::duration("delay").default_value("0s").min(0).describe("Sleeps this long per document (a run long enough to watch)")};
        return d;
    }
    TestFieldsTransform(const docpipe::Config& c, docpipe::Context&) : tag_(c.get_string("tag")), delay_(c.get_duration("delay")) {}
    void process(const docpipe::DocumentPtr& input, docpipe::Outputs& out) override {
        if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
        auto doc = std::make_shared<docpipe::Document>(*input);
        std::size_t n = 0;
        for (const auto& part : doc->parts) n += part.bytes->size();
        doc->fields["bytes"] = n;
        doc->fields["tag"] = tag_;
        out.emit(doc);
    }

private:
    std::string tag_;
    std::chrono::milliseconds delay_;
};

// Wedges the graph on purpose: a document whose file name contains `wedge_on` never leaves
// this node (the call sleeps until the process ends). For the service watchdog test: a
// stuck graph must stop the WATCHDOG=1 pings so that systemd restarts the service.
class WedgeTransform : public docpipe::Transform {
public:
    static docpipe::ComponentDescriptor describe() {
        docpipe::ComponentDescriptor d;
        d.kind = docpipe::ComponentKind::Transform;
        d.name = "transform.test_wedge";
        d.summary = "test: never returns for a document whose file name contains wedge_on";
        d.concurrent_safe = true;
        d.config = docpipe::ConfigSpec{docpipe::Field::string("wedge_on").default_value("wedge").describe("File-name fragment that wedges")};
        return d;
    }
    WedgeTransform(const docpipe::Config& c, docpipe::Context&) : wedge_on_(c.get_string("wedge_on")) {}
    void process(const docpipe::DocumentPtr& input, docpipe::Outputs& out) override {
        const auto name = input->attributes.count("filename") ? input->attributes.at("filename") : input->id;
        if (name.find(wedge_on_) != std::string::npos)
            for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
        out.emit(input);
    }

private:
    std::string wedge_on_;
};

DOCPIPE_PLUGIN("test-crash", "0.1.0", "crash tests: a sink that can kill its own process, claims without OCR, a wedged node",
               docpipe::component<CrashFilesSink>(), docpipe::component<TestClaimTransform>(),
               docpipe::component<TestFieldsTransform>(), docpipe::component<WedgeTransform>())
