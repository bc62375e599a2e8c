// sink.review — see builtin.hpp.
#include <fmt/core.h>

#include "builtin.hpp"
#include "state/store.hpp"

namespace docpipe::core {

namespace {

class ReviewSink : public Sink {
public:
    static ComponentDescriptor describe() {
        ComponentDescriptor d;
        d.kind = ComponentKind::Sink;
        d.name = "sink.review";
        d.summary = "Parks documents in the review queue (state store) for a person to approve or reject";
        d.concurrent_safe = true;
        d.has_health_probe = true;
        d.config = ConfigSpec{
            Field::string("reason").default_value("needs review")
                .describe("Reason recorded when the document carries no review_reason attribute"),
        };
        return d;
    }

    ReviewSink(const Config& config, Context& context) : ctx_(context), default_reason_(config.get_string("reason")) {
        store_ = dynamic_cast<Store*>(&context.state());
        if (!store_) throw std::logic_error("sink.review needs the runtime's state store");
    }

    SinkResult write(const Document& doc) override {
        auto job_it = doc.attributes.find(kJobIdAttribute);
        const std::string job_id = job_it != doc.attributes.end() ? job_it->second : doc.id;
        auto reason_it = doc.attributes.find(kReviewReasonAttribute);
        const std::string reason = reason_it != doc.attributes.end() ? reason_it->second : default_reason_;
        // The job's status is not set here: it becomes `review` when all the email's other
        // attachments are settled too (the runtime derives it). A StoreError propagates: the
        // runtime waits for the store without using up the document's retries.
        nlohmann::json record{{"job_id", job_id}, {"reason", reason}, {"node", ctx_.node_name()}, {"document", doc.to_json(true)}};
        store_->put(fmt::format("review/{}/{}", job_id, doc.id), record.dump());
        ctx_.metrics().increment("review_parked_total");
        return SinkResult::parked(reason);
    }

    HealthReport health() override { return store_->probe(); }

private:
    Context& ctx_;
    std::string default_reason_;
    Store* store_ = nullptr;  // the runtime's; outlives this component
};

}  // namespace

ComponentDescriptor review_sink_descriptor() { return component<ReviewSink>(); }

}  // namespace docpipe::core
