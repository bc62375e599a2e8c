#include "attachment_kind.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "docpipe/document.hpp"

namespace docpipe::mail {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

bool any_of(std::string_view value, std::initializer_list<std::string_view> options) {
    return std::find(options.begin(), options.end(), value) != options.end();
}

bool starts(const std::uint8_t* data, std::size_t size, std::string_view magic, std::size_t at = 0) {
    return size >= at + magic.size() && std::memcmp(data + at, magic.data(), magic.size()) == 0;
}

// Extensions of documents that are not receipts, sent as octet-stream. Any other suffix after
// a dot says nothing ("Klinik Dr.Tan", "Resit No.A123", "receipt.jpg.part"): the bytes decide.
bool other_document(std::string_view name) {
    const std::size_t dot = name.rfind('.');
    if (dot == std::string_view::npos) return false;
    return any_of(name.substr(dot + 1), {"doc", "docx", "docm", "dot", "dotx", "xls", "xlsx", "xlsm", "ppt", "pptx", "odt", "ods", "odp",
                                         "rtf", "txt", "csv", "htm", "html", "xml", "json", "ics", "vcf", "eml", "msg", "p7s", "sig",
                                         "asc", "exe", "dll", "msi", "js", "vbs", "bat", "cmd", "ps1", "lnk", "iso", "mp3", "mp4",
                                         "m4a", "mov", "avi", "wav", "ogg", "amr", "3gp", "apk"});
}

}  // namespace

Classified classify_declared(std::string_view declared_type, std::string_view filename) {
    std::string type = lower(declared_type);
    const std::string name = lower(filename);
    // Types that say nothing: the name decides, and failing that the bytes.
    const bool says_nothing = type.empty() || any_of(type, {"application/octet-stream", "binary/octet-stream", "application/x-download",
                                                            "application/download", "application/force-download", "application/unknown"});
    if (says_nothing) type = media_type_for(filename);
    if (type == "application/x-pdf" || type == "application/acrobat") type = "application/pdf";
    if (type.rfind("image/", 0) == 0 || type == "application/pdf") return {AttachmentKind::Claim, type};
    if (any_of(type, {"application/zip", "application/x-zip", "application/x-zip-compressed", "multipart/x-zip", "application/x-tar",
                      "application/x-gtar", "application/x-compressed-tar", "application/gzip", "application/x-gzip", "application/x-bzip2",
                      "application/x-xz"}) ||
        ends_with(name, ".zip") || ends_with(name, ".tar") || ends_with(name, ".tgz") || ends_with(name, ".gz") || ends_with(name, ".bz2") ||
        ends_with(name, ".xz") || ends_with(name, ".tbz2") || ends_with(name, ".txz"))
        return {AttachmentKind::Archive, {}};
    if (any_of(type, {"application/pkcs7-mime", "application/x-pkcs7-mime"}) || ends_with(name, ".p7m")) return {AttachmentKind::Pkcs7, {}};
    if (any_of(type, {"application/ms-tnef", "application/vnd.ms-tnef"}) || name == "winmail.dat") return {AttachmentKind::Tnef, {}};
    if (any_of(type, {"application/x-7z-compressed", "application/vnd.rar", "application/x-rar-compressed", "application/x-rar"}) ||
        ends_with(name, ".7z") || ends_with(name, ".rar"))
        return {AttachmentKind::UnopenedArchive, {}};
    if (type == "application/pgp-encrypted" || ends_with(name, ".gpg") || ends_with(name, ".pgp")) return {AttachmentKind::PgpEncrypted, {}};
    // Nothing is known of it. A document's extension ("claim_form.docx", "setup.exe") says it
    // is that; any other name ("receipt", "Klinik Dr.Tan", "scan.dat") says nothing, and its
    // bytes decide.
    if (type == "application/octet-stream" && !other_document(name)) return {AttachmentKind::Unknown, {}};
    return {AttachmentKind::Other, {}};
}

Classified classify_bytes(const std::uint8_t* d, std::size_t n) {
    if (starts(d, n, "\xFF\xD8\xFF")) return {AttachmentKind::Claim, "image/jpeg"};
    if (starts(d, n, "\x89PNG\r\n\x1A\n")) return {AttachmentKind::Claim, "image/png"};
    if (starts(d, n, std::string_view("II*\0", 4)) || starts(d, n, std::string_view("MM\0*", 4))) return {AttachmentKind::Claim, "image/tiff"};
    if (starts(d, n, "GIF87a") || starts(d, n, "GIF89a")) return {AttachmentKind::Claim, "image/gif"};
    if (starts(d, n, "RIFF") && starts(d, n, "WEBP", 8)) return {AttachmentKind::Claim, "image/webp"};
    if (starts(d, n, "ftyp", 4)) {
        for (const char* brand : {"heic", "heix", "hevc", "heim", "heis", "mif1", "msf1"})
            if (starts(d, n, brand, 8)) return {AttachmentKind::Claim, "image/heic"};
        if (starts(d, n, "avif", 8) || starts(d, n, "avis", 8)) return {AttachmentKind::Claim, "image/avif"};
    }
    // A PDF's header, after at most a byte-order mark or white space (a note that quotes
    // "%PDF-" in its text is no PDF).
    std::size_t lead = starts(d, n, "\xEF\xBB\xBF") ? 3 : 0;
    while (lead < n && lead < 16 && std::isspace(d[lead])) ++lead;
    if (starts(d, n, "%PDF-", lead)) return {AttachmentKind::Claim, "application/pdf"};
    // A print job's PDF: the printer language's prefix, then the PDF within its first KB.
    if ((starts(d, n, "\x1B%-12345X") || starts(d, n, "@PJL")) &&
        std::string_view(reinterpret_cast<const char*>(d), std::min<std::size_t>(n, 1024)).find("%PDF-") != std::string_view::npos)
        return {AttachmentKind::Claim, "application/pdf"};
    // ZIP, tar, and the compressions a tar comes in.
    if (starts(d, n, "PK\x03\x04") || starts(d, n, "PK\x05\x06") || starts(d, n, "ustar", 257) || compressed_stream(d, n))
        return {AttachmentKind::Archive, {}};
    if (starts(d, n, "\x78\x9F\x3E\x22")) return {AttachmentKind::Tnef, {}};
    if (starts(d, n, "7z\xBC\xAF\x27\x1C") || starts(d, n, "Rar!\x1A\x07")) return {AttachmentKind::UnopenedArchive, {}};
    if (starts(d, n, "-----BEGIN PGP MESSAGE-----")) return {AttachmentKind::PgpEncrypted, {}};
    // DER or BER PKCS #7: a SEQUENCE, then the OID 1.2.840.113549.1.7.x.
    if (n > 16 && d[0] == 0x30) {
        const std::size_t at = d[1] == 0x80 ? 2 : d[1] < 0x80 ? 2 : 2 + (d[1] & 0x7F);
        if (starts(d, n, "\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x07", at)) return {AttachmentKind::Pkcs7, {}};
    }
    return {AttachmentKind::Other, {}};
}

bool compressed_stream(const std::uint8_t* d, std::size_t n) {
    return starts(d, n, "\x1F\x8B") || starts(d, n, "BZh") || starts(d, n, std::string_view("\xFD" "7zXZ\0", 6));
}

std::string not_read_reason(AttachmentKind kind) {
    switch (kind) {
        case AttachmentKind::UnopenedArchive:
            return "a 7-Zip or RAR archive: docpipe does not open these (libarchive reads a 7-Zip archive's whole index before any "
                   "file, and does not check the checksum of a file stored in a RAR, nor say when a RAR is one volume of several; ZIP "
                   "and tar archives are read); ask the sender to attach the files or a ZIP";
        case AttachmentKind::PgpEncrypted:
            return "a PGP-encrypted file: it cannot be read without the recipient's key; ask the sender to send it unencrypted";
        default:
            return "";
    }
}

}  // namespace docpipe::mail
