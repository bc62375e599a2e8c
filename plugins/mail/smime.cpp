#include "smime.hpp"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include <climits>
#include <memory>

namespace docpipe::mail {

namespace {

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct CmsFree {
    void operator()(CMS_ContentInfo* c) const { CMS_ContentInfo_free(c); }
};

// OpenSSL's error queue is per thread; what this parse left there is read and cleared, so a
// later TLS call on the thread does not report it as its own.
std::string openssl_error() {
    std::string text;
    while (const unsigned long code = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        if (text.empty()) text = buf;
    }
    return text.empty() ? "not a PKCS #7 / CMS structure" : text;
}

}  // namespace

SmimeContent smime_content(const Bytes& der) {
    SmimeContent out;
    ERR_clear_error();
    if (der.empty() || der.size() > static_cast<std::size_t>(INT_MAX)) {
        out.error = der.empty() ? "empty" : "too large";
        return out;
    }
    std::unique_ptr<BIO, BioFree> in(BIO_new_mem_buf(der.data(), static_cast<int>(der.size())));
    std::unique_ptr<CMS_ContentInfo, CmsFree> cms(in ? d2i_CMS_bio(in.get(), nullptr) : nullptr);
    if (!cms) {
        out.error = openssl_error();
        return out;
    }
    switch (OBJ_obj2nid(CMS_get0_type(cms.get()))) {
        case NID_pkcs7_signed: {
            ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
            if (!content || !*content || ASN1_STRING_length(*content) <= 0) {
                out.kind = SmimeKind::NoContent;  // a detached signature or a certificates-only message
                break;
            }
            const unsigned char* data = ASN1_STRING_get0_data(*content);
            out.content.assign(data, data + ASN1_STRING_length(*content));
            out.kind = SmimeKind::SignedContent;
            break;
        }
        case NID_pkcs7_enveloped:
        case NID_id_smime_ct_authEnvelopedData:
        case NID_pkcs7_encrypted:
            out.kind = SmimeKind::Encrypted;
            break;
        case NID_id_smime_ct_compressedData:
            out.kind = SmimeKind::Compressed;
            break;
        default:
            out.error = "a PKCS #7 structure of another type than signed, encrypted or compressed data";
            break;
    }
    ERR_clear_error();
    return out;
}

}  // namespace docpipe::mail
