#include "mime_transform.hpp"

#include <fmt/core.h>

namespace docpipe::mail {

namespace {

// The unreadable parts of one email, as a reason a person reads: the first few named, the rest
// counted (the same list goes into a failed email's reason and beside each claim read).
std::string name_the_first_few(const std::vector<std::string>& problems) {
    constexpr std::size_t kNamed = 5;
    std::string named;
    for (std::size_t i = 0; i < problems.size() && i < kNamed; ++i) named += (i ? "; " : "") + problems[i];
    if (problems.size() > kNamed) named += fmt::format("; and {} more", problems.size() - kNamed);
    return named;
}

}  // namespace

ComponentDescriptor MimeTransform::describe() {
    ComponentDescriptor d;
    d.kind = ComponentKind::Transform;
    d.name = "transform.mime";
    d.summary = "Splits an email (RFC 822) into one document per image/PDF attachment, with the email's headers and body text";
    d.concurrent_safe = true;
    d.config = ConfigSpec{
        Field::integer("max_attachments").default_value(20).min(1).max(10000)
            .describe("Claim attachments one email may carry; more fails the email as bad input"),
        Field::integer("max_parts").default_value(500).min(1).max(100000)
            .describe("MIME parts walked before the email is refused; an archive or winmail.dat whose files would go past it is not opened"),
        Field::integer("min_image_bytes").default_value(8192).min(0)
            .describe("Images smaller than this are logos or signatures and are skipped"),
        Field::integer("max_attachment_bytes").default_value(25 * 1024 * 1024).min(1)
            .describe("Attachments larger than this are skipped with a reason (a file inside an archive or winmail.dat too)"),
        Field::integer("max_archive_bytes").default_value(100 * 1024 * 1024).min(1)
            .describe("What one email's archives (ZIP, tar, a file compressed alone) may decompress to, files stepped over included; past it, the rest is not read and is named as unreadable"),
    };
    return d;
}

MimeTransform::MimeTransform(const Config& config, Context& context) : ctx_(context) {
    limits_.max_attachments = static_cast<std::size_t>(config.get_int("max_attachments"));
    limits_.max_parts = static_cast<std::size_t>(config.get_int("max_parts"));
    limits_.min_image_bytes = static_cast<std::size_t>(config.get_int("min_image_bytes"));
    limits_.max_attachment_bytes = static_cast<std::size_t>(config.get_int("max_attachment_bytes"));
    limits_.max_archive_bytes = static_cast<std::size_t>(config.get_int("max_archive_bytes"));
    route_library_messages_to(&ctx_.log());
}

MimeTransform::~MimeTransform() { stop_routing_library_messages_to(&ctx_.log()); }

bool MimeTransform::is_email(const Part& part) { return part.media_type == "message/rfc822"; }

void MimeTransform::process(const DocumentPtr& input, Outputs& out) {
    if (input->parts.empty() || !is_email(input->parts.front())) {
        out.emit(input);  // not an email: a bare image or PDF goes on as it is
        return;
    }
    const Part& part = input->parts.front();
    const auto& bytes = *part.bytes;
    if (bytes.empty()) throw BadInput(fmt::format("{}: not an email: the file is empty", part.name));
    ParsedEmail email = parse_email(bytes.data(), bytes.size(), limits_);
    if (email.message_id.empty() && email.subject.empty() && email.from.empty() && email.attachments.empty() && email.body_text.empty())
        throw BadInput(fmt::format("{}: not an email: no headers, body or attachments could be read", part.name));
    if (email.too_many_parts)
        throw BadInput(fmt::format("{}: more than {} MIME parts (max_parts); refused without decoding", part.name, limits_.max_parts));

    // The reason is read by a person in the review queue: the first few skipped attachments
    // are named with their reasons, the rest counted (an email of 200 signature images gave
    // a reason of 17 KB and 200 log lines).
    constexpr std::size_t kNamedSkips = 10;
    std::size_t claim_count = 0, skipped = 0;
    std::string skipped_summary;
    for (const auto& a : email.attachments) {
        if (a.skipped.empty()) {
            ++claim_count;
        } else if (++skipped <= kNamedSkips) {
            ctx_.log().log(LogLevel::Info, fmt::format("{}: attachment '{}' skipped: {}", part.name, a.shown_name(), a.skipped), input->id);
            skipped_summary += fmt::format("{}'{}': {}", skipped_summary.empty() ? "" : "; ", a.shown_name(), a.skipped);
        }
    }
    for (const std::string& what : email.unreadable_elsewhere) {
        ctx_.log().log(LogLevel::Info, fmt::format("{}: {}", part.name, what), input->id);
        skipped_summary += (skipped_summary.empty() ? "" : "; ") + what;
    }
    if (skipped > kNamedSkips) {
        skipped_summary += fmt::format("; and {} more attachments skipped", skipped - kNamedSkips);
        ctx_.log().log(LogLevel::Info, fmt::format("{}: {} more attachments skipped, not named", part.name, skipped - kNamedSkips), input->id);
    }
    if (claim_count > limits_.max_attachments)
        throw BadInput(fmt::format("{}: {} claim attachments, more than max_attachments ({}); split the claim or raise the limit",
                                   part.name, claim_count, limits_.max_attachments));
    if (claim_count == 0 && !email.unreadable.empty()) {
        // Failed, not skipped: a skipped email goes to processed/, and its claim was lost with
        // no one seeing it. Here a part that could be (or could hide) the claim attachment could
        // not be read, so the email fails as bad input, is dead-lettered and a person reads why.
        throw BadInput(fmt::format("{}: no claim attachment could be read: {}", part.name, name_the_first_few(email.unreadable)));
    }
    if (claim_count == 0) {
        ctx_.metrics().increment("emails_without_attachment_total");
        out.skip(skipped_summary.empty() ? "no claim attachment (image or PDF) in the email"
                                         : "no claim attachment (image or PDF) in the email; " + skipped_summary);
        return;
    }

    // Beside the receipts read, what could not be read and may hide another receipt (a
    // password-protected ZIP, an archive cut short): each claim carries it, so that the claim
    // goes to a person rather than being booked while the other receipt is lost unseen
    // (transform.confidence_router routes it to review).
    const std::string unreadable = name_the_first_few(email.unreadable);

    std::size_t index = 0;
    for (auto& a : email.attachments) {
        if (!a.skipped.empty()) continue;
        ++index;
        Document child = input->make_child(fmt::format("{}:{}", index, a.filename));
        child.attributes["email_filename"] = part.name;
        child.attributes["filename"] = a.filename;
        // The source's, when it read one (job records are found by it): one id per email, even
        // where GMime reads an odd header otherwise.
        if (child.attributes["message_id"].empty()) child.attributes["message_id"] = email.message_id;
        child.attributes["from"] = email.from;
        child.attributes["to"] = email.to;
        child.attributes["subject"] = email.subject;
        child.attributes["email_date"] = email.date_iso;
        child.attributes["body_text"] = email.body_text;
        child.attributes["attachment"] = fmt::format("{}/{}", index, claim_count);
        if (a.depth > 0) child.attributes["forwarded"] = "true";
        if (!a.archive.empty()) child.attributes["archive"] = a.archive;
        if (!skipped_summary.empty()) child.attributes["skipped_attachments"] = skipped_summary;
        if (!unreadable.empty()) child.attributes["unreadable_attachments"] = unreadable;
        const std::string media_type = a.media_type;
        child.parts.push_back(Part{a.filename, media_type, std::make_shared<const Bytes>(std::move(a.bytes))});
        out.emit(std::make_shared<const Document>(std::move(child)));
    }
    ctx_.metrics().increment("attachments_total", static_cast<double>(claim_count));
}

}  // namespace docpipe::mail
