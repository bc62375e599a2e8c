// The content of an opaque-signed S/MIME email (application/pkcs7-mime; smime-type=
// signed-data, "smime.p7m"): the whole email, attachments included, is inside the PKCS #7
// structure, where a MIME walk sees one binary part and nothing to claim.
//
// The signature is NOT verified: docpipe reads claims, it does not vouch for senders, and
// the insurer's own checks decide who a claimant is. The content is taken as it stands.
//
// Pure functions over bytes (OpenSSL's CMS parser); thread-safe.
#pragma once

#include <string>

#include "docpipe/document.hpp"

namespace docpipe::mail {

enum class SmimeKind { SignedContent, Encrypted, Compressed, NoContent, Unreadable };

struct SmimeContent {
    SmimeKind kind = SmimeKind::Unreadable;
    Bytes content;      // the signed MIME entity, for SignedContent
    std::string error;  // for Unreadable: what OpenSSL said
};

// `der` is the decoded part (base64 already undone).
SmimeContent smime_content(const Bytes& der);

}  // namespace docpipe::mail
