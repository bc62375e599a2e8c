#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <mutex>

#include <fmt/core.h>

#include "builtin.hpp"
#include "state/store.hpp"

namespace docpipe::core {

namespace {

// transform.dedup — drops a document whose content was already accepted within `ttl`.
//
// The key is the SHA-256 of the document's part bytes (placed after transform.mime: one
// attachment), the value the job that first carried it and that document's id. A hit is a
// duplicate when that earlier delivery can stand: a different job whose status is not
// failed/rejected (the member sent the receipt again, in another email), another document
// of the same job (the same file attached twice to one email), or the same document of the
// same job already delivered successfully before. A rejected copy stands when a receiving
// system holds it all the same (its outcome is `held`, see DescendantOutcome::held). A
// redelivery after a crash or a failure is processed again — a dedup check must never block
// the submission it is protecting (the prototype's did).
class DedupTransform : public Transform {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Transform;
        d.name = "transform.dedup";
        d.summary = "Skips documents whose content (SHA-256) was already accepted within a TTL; records the job as skipped";
        d.concurrent_safe = true;
        d.config = ConfigSpec{
            Field::duration("ttl").default_value("30d").min(1).describe("How long a content hash is remembered"),
        };
        return d;
    }

    DedupTransform(const Config& config, Context& context)
        : ctx_(context), ttl_(std::chrono::duration_cast<std::chrono::seconds>(config.get_duration("ttl"))) {
        store_ = dynamic_cast<Store*>(&context.state());
        if (!store_) throw std::logic_error("transform.dedup needs the runtime's state store");
    }

    void process(const DocumentPtr& input, Outputs& out) override {
        // No content is nobody's copy: five empty files dropped together were skipped as
        // duplicates of an empty email that had failed, and filed as processed. Each goes on
        // to fail on its own ("empty file").
        if (std::all_of(input->parts.begin(), input->parts.end(), [](const auto& p) { return !p.bytes || p.bytes->empty(); })) {
            out.emit(input);
            return;
        }
        const std::string hash = content_hash(*input);
        const std::string job_id = attribute(*input, kJobIdAttribute, input->id);
        const std::string key = "dedup/" + hash;
        const std::string owner = job_id + " " + input->id;
        // Two attachments of one email with the same bytes may be here at once (concurrency
        // above 1): the read, the decision and the write for one hash are one step.
        std::lock_guard lock(stripes_[std::hash<std::string>{}(hash) % stripes_.size()]);
        if (input->attributes.count(kRedeliverAttribute)) {  // `run --once --redeliver`: on purpose
            store_->put(key, owner, ttl_);
            out.emit(input);
            return;
        }
        // StoreError propagates: the runtime retries, so an outage never lets a duplicate through.
        if (store_->put_if_absent(key, owner, ttl_)) {
            out.emit(input);
            return;
        }
        // "<job> <document>"; a value stored before the document was added is the job alone.
        const std::string stored = store_->get(key).value_or(owner);
        const std::size_t space = stored.find(' ');
        const std::string original = stored.substr(0, space);
        const std::string original_doc = space == std::string::npos ? input->id : stored.substr(space + 1);
        const auto original_job = store_->get_job(original);
        const std::string original_status = original_job ? original_job->status : "";
        const bool own_outcome_known = space != std::string::npos && original != job_id;
        // A failed or rejected job booked nothing, and its copy sent again is new; unless its
        // document's outcome says a receiving system holds it all the same (`held`: NCB booked
        // the first values and the corrections were parked, then rejected, or failed): sent
        // again, it would be booked twice. Only that mark counts in such a job: its other
        // deliveries (the email archived as received) are no booking.
        const bool not_booked = original_status == "failed" || original_status == "rejected";
        bool original_stands = !original_status.empty() && (!not_booked || own_outcome_known);
        // The first copy's own outcome, where the job says: in a `partial` job one receipt may
        // have been booked and this one have failed, and sent again it must go through.
        if (original_stands && own_outcome_known) {
            bool found = false;
            for (const auto& o : original_job->outcomes())
                if (o.value("doc_id", "") == original_doc) {
                    const std::string status = o.value("status", "");
                    const bool held = o.value("held", false) == true;
                    original_stands = not_booked ? held : (status != "failed" && status != "rejected") || held;
                    found = true;
                    break;
                }
            if (!found && not_booked) original_stands = false;
            // Across a stream (pipelines/distributed) the first job ends `submitted` once the
            // document is handed on; its fate is the later stages' jobs (`<doc>@<node>`).
            if (original_stands) {
                JobQuery later;
                later.root_id = original;
                later.limit = 200;
                for (const auto& stage : store_->list_jobs(later).jobs)
                    if (stage.id.rfind(original_doc + "@", 0) == 0 &&
                        (stage.status == "failed" || (stage.status == "rejected" && !any_held(stage)))) {
                        original_stands = false;
                        break;
                    }
            }
        }
        const std::string previous = attribute(*input, kPreviousStatusAttribute, "");
        const bool attached_twice = original == job_id && original_doc != input->id;
        // The same document again (a redelivery): done if its job ended in full, rejected by a
        // reviewer included (it went back to the review queue as an empty job).
        const bool duplicate = original != job_id ? original_stands
                               : attached_twice   ? true
                                                  : previous == "submitted" || previous == "approved" || previous == "review" ||
                                                      previous == "rejected";
        if (!duplicate) {
            store_->put(key, owner, ttl_);  // this delivery now owns the hash
            // The first copy failed or was rejected, and this one is sent in its place: an
            // operator's retry of the first would book the receipt twice (AdminActions::retry_job
            // reads this).
            if (original != job_id && original_job && space != std::string::npos)
                store_->update_job(original, [&](Job& j) {
                    if (!j.references.is_object()) j.references = nlohmann::json::object();
                    j.references["resent_as"][original_doc] = job_id;
                });
            out.emit(input);
            return;
        }
        ctx_.metrics().increment("duplicates_total");
        ctx_.log().log(LogLevel::Info,
                       attached_twice ? fmt::format("the same file twice in job {} (content sha256 {}...): the copy is skipped", job_id,
                                                    hash.substr(0, 12))
                                      : fmt::format("duplicate of job {} (content sha256 {}...): skipped", original, hash.substr(0, 12)),
                       input->id);
        if (original != job_id) {
            // The copy's own email stays findable by its Message-ID (a follow-up "same receipt,
            // and here is my policy number" is often sent), and the first copy's job names it,
            // so whoever reviews that one knows another email came.
            // Before transform.mime (the whole email deduplicated) there is no message_id
            // attribute yet; the bytes are the first copy's, so its Message-ID is this one's.
            std::string message_id = attribute(*input, "message_id", "");
            if (message_id.empty() && original_job) message_id = original_job->email_id;
            store_->update_job(job_id, [&](Job& j) {
                j.duplicate_of = original;
                if (j.email_id.empty()) j.email_id = message_id;
            });
            if (original_job)
                store_->update_job(original, [&](Job& j) {
                    if (!j.references.is_object()) j.references = nlohmann::json::object();
                    nlohmann::json& copies = j.references["sent_again_in"];
                    if (!copies.is_array()) copies = nlohmann::json::array();
                    constexpr std::size_t kNamedCopies = 20;
                    if (copies.size() < kNamedCopies && std::find(copies.begin(), copies.end(), job_id) == copies.end())
                        copies.push_back(job_id);
                });
        }
        // Nothing is emitted: the document is consumed, and its source is acked. The runtime
        // ends the job as `skipped` — or, for the same document delivered again, keeps the
        // status its first delivery ended with.
        // A first copy still on its way decides for both: should it fail, its own job is the
        // one to retry (this copy is not kept), and the operator reading this job is told so.
        const bool original_undecided = original_status == "processing" || original_status == "approved";
        out.skip(attached_twice            ? fmt::format("the same file as document {} of this job: skipped as a copy", original_doc)
                 : original == job_id ? fmt::format("already processed (job is '{}')", previous)
                 : original_undecided ? fmt::format("duplicate of job {}, which was still {} when this copy came: that job's "
                                                    "outcome stands for both (if it fails, retry job {})",
                                                    original, original_status, original)
                                      : "duplicate of job " + original);
    }

private:
    static bool any_held(const Job& job) {
        const auto outcomes = job.outcomes();
        return std::any_of(outcomes.begin(), outcomes.end(), [](const nlohmann::json& o) { return o.value("held", false) == true; });
    }
    static std::string attribute(const Document& d, const char* name, const std::string& fallback) {
        auto it = d.attributes.find(name);
        return it == d.attributes.end() ? fallback : it->second;
    }
    static std::string content_hash(const Document& d) {
        // A running SHA-256 over every part, separated so ("ab","c") and ("a","bc") differ.
        std::string joined;
        for (const auto& p : d.parts) {
            joined += std::to_string(p.bytes ? p.bytes->size() : 0) + ":";
            if (p.bytes) joined.append(reinterpret_cast<const char*>(p.bytes->data()), p.bytes->size());
        }
        unsigned char digest[32];
        unsigned int length = 0;
        EVP_Digest(joined.data(), joined.size(), digest, &length, EVP_sha256(), nullptr);
        static constexpr char kHex[] = "0123456789abcdef";
        std::string hex;
        for (unsigned int i = 0; i < length; ++i) {
            hex += kHex[digest[i] >> 4];
            hex += kHex[digest[i] & 0xF];
        }
        return hex;
    }

    Context& ctx_;
    std::chrono::seconds ttl_;
    Store* store_ = nullptr;  // the runtime's; outlives this component
    std::array<std::mutex, 16> stripes_;  // by hash: one decision at a time per content
};

}  // namespace

ComponentDescriptor dedup_transform_descriptor() { return component<DedupTransform>(); }

}  // namespace docpipe::core
