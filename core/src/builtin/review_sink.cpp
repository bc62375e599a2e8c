// sink.review — see builtin.hpp.
#include <algorithm>
#include <atomic>
#include <optional>
#include <set>

#include <fmt/core.h>

#include "admin/page_preview.hpp"
#include "builtin.hpp"
#include "services.hpp"
#include "state/store.hpp"

namespace docpipe::core {

namespace {

const Part* only_pdf(const Document& doc) {
    const Part* found = nullptr;
    for (const auto& part : doc.parts) {
        const bool pdf = part.media_type == "application/pdf" ||
                         (part.bytes && part.bytes->size() >= 5 && std::equal(part.bytes->begin(), part.bytes->begin() + 5, "%PDF-"));
        if (!pdf) continue;
        if (found) return nullptr;  // two PDFs: a page index alone does not say whose page it is
        found = &part;
    }
    return found && found->bytes ? found : nullptr;
}

// One entry per stored preview: {page, width, height, scale} (PNG size; PNG pixels per
// raster pixel). A page that cannot be encoded is parked without its image (the
// reviewer still sees the boxes), not failed: the preview is a convenience.
nlohmann::json store_page_previews(Store& store, Context& ctx, const std::string& job_id, const Document& doc) {
    nlohmann::json stored = nlohmann::json::array();
    std::set<int> seen;
    for (const auto& page : doc.pages) {
        if (!seen.insert(page.index).second) continue;  // one key per page index; the first raster wins
        std::optional<admin::PagePreview> preview;
        const char* source = "raster";
        try {
            preview = admin::encode_page_preview(page.image);
            if (!preview && !page.text_layer.empty()) {
                // Born-digital: read from its text layer, never rasterised. Render it from
                // the PDF, when the document has exactly one (whose page this is).
                if (const Part* pdf = only_pdf(doc)) {
                    preview = admin::render_pdf_page_preview(*pdf->bytes, page.index);
                    source = "pdf";
                }
            }
        } catch (const std::exception& e) {
            ctx.log().log(LogLevel::Warn, fmt::format("page {}: no review image stored: {}", page.index + 1, e.what()), doc.id);
            continue;
        }
        if (!preview) continue;
        store.put(admin::review_page_key(job_id, doc.id, page.index), preview->png);
        stored.push_back({{"page", page.index}, {"width", preview->width}, {"height", preview->height}, {"scale", preview->scale},
                          {"raster_width", page.image.width}, {"raster_height", page.image.height}, {"source", source}});
    }
    return stored;
}

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
        auto reason_it = doc.attributes.find(kReviewReasonAttribute);
        const std::string reason = reason_it != doc.attributes.end() ? reason_it->second : default_reason_;
        // The job's status is not set here: it becomes `review` when all the email's other
        // attachments are settled too (the runtime derives it). A StoreError propagates: the
        // runtime waits for the store without using up the document's retries.
        store_for_review(*store_, ctx_, doc, reason);
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

void store_for_review(Store& store, Context& ctx, const Document& doc, const std::string& reason) {
    auto job_it = doc.attributes.find(kJobIdAttribute);
    const std::string job_id = job_it != doc.attributes.end() ? job_it->second : doc.id;
    // Each parking is a record of its own (parked_at, a sequence): an approval's callback erases
    // the record only if it is still the one the approval read, and a claim parked again by
    // that very delivery, identical otherwise, was erased with it.
    static std::atomic<std::uint64_t> parkings{0};
    nlohmann::json record{{"job_id", job_id},
                          {"reason", reason},
                          {"node", ctx.node_name()},
                          {"parked_at", iso8601(ctx.clock().now())},
                          {"parking", parkings.fetch_add(1) + 1},
                          {"document", doc.to_json(true)}};
    // Page pixels are not part of the document's JSON, and a browser cannot show a PDF or
    // TIFF page: each page raster goes in as a scaled PNG under its own key, written
    // before the record so a parked document never names a preview that is not there.
    record["page_images"] = store_page_previews(store, ctx, job_id, doc);
    store.put(fmt::format("review/{}/{}", job_id, doc.id), docpipe::json_text(record));
}

}  // namespace docpipe::core
