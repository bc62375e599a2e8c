// transform.mime: one email (a part of type message/rfc822, e.g. an .eml file or a maildir
// message) becomes one document per claim attachment (image or PDF, also inline images,
// those of a forwarded message, the images and PDFs inside a ZIP or tar attachment, an
// Outlook winmail.dat and an opaque-signed S/MIME email), each carrying the email's
// message_id, from, to, email_date, subject and body_text attributes for the claims step (and
// `archive`, the archive's or winmail.dat's name).
//
// - An email with no claim attachment that also holds something unreadable which could be
//   one (an encrypted email, a damaged winmail.dat, a 7-Zip or RAR archive, a damaged archive, a
//   password-protected file in an archive, undecodable base64) fails as bad input, naming it: a
//   person must look.
// - An email with no claim attachment is consumed and its job recorded as skipped, with
//   the reason (Outputs::skip); tiny images (logos, signatures) are skipped with a reason.
// - More claim attachments than max_attachments, or more MIME parts than max_parts, fails
//   the email as bad input with both numbers; nothing is emitted.
// - A document that is not an email passes through unchanged, so one drop folder can take
//   both .eml files and bare receipt images.
// Stateless; process() may run on several threads at once.
#pragma once

#include "docpipe/component.hpp"
#include "email.hpp"

namespace docpipe::mail {

class MimeTransform : public Transform {
public:
    static ComponentDescriptor describe();
    MimeTransform(const Config& config, Context& context);
    ~MimeTransform() override;
    void process(const DocumentPtr& input, Outputs& out) override;

    static bool is_email(const Part& part);

private:
    Context& ctx_;
    EmailLimits limits_;
};

}  // namespace docpipe::mail
