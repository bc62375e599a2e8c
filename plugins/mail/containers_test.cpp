// transform.mime on the wrappers claim attachments arrive in: ZIP archives (built here with
// libarchive's writer, encrypted ones included), opaque-signed and encrypted S/MIME (built
// here with OpenSSL's CMS, with a throwaway key), PGP/MIME, clear-signed mail, Outlook's
// winmail.dat (TNEF, built here as Outlook lays it out), tar archives, and 7-Zip and RAR
// (written here), which are named, not opened. Every email either yields its receipts or fails as bad input naming what could
// not be read: none is skipped with its claim inside.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <clocale>
#include <filesystem>
#include <locale.h>
#include <nlohmann/json.hpp>
#include <fstream>
#include <memory>
#include <sstream>
#include <tuple>
#include <zlib.h>

#include "archive.hpp"
#include "base64.hpp"
#include "docpipe/testing.hpp"
#include "email.hpp"
#include "rtf.hpp"
#include "tnef.hpp"

using namespace docpipe;
namespace fs = std::filesystem;
using docpipe::testing::NodeRunner;

namespace {

const fs::path kSource = DOCPIPE_SOURCE_DIR;
const fs::path kPlugin = fs::path(DOCPIPE_BUILD_PLUGIN_DIR) / "libdocpipe-mail.so";

const std::string& receipt() {
    static const std::string r = [] {
        std::ifstream in(kSource / "examples/inbox/sources/malaysian_receipt_test.jpg", std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }();
    return r;
}

struct File {
    std::string path, bytes;
};

// A ZIP as an archiver writes it. `encryption` is libarchive's zip option ("zipcrypt",
// "aes256"), with the passphrase "secret".
// `sizes_unknown`: written as a stream is (sizes in a data descriptor after each file's
// data, not in its header), as phones and web apps zip on the fly.
// `utf8_names`: names written with the ZIP's UTF-8 flag, as macOS, Windows and phones do.
std::string zip_of(const std::vector<File>& files, const std::string& encryption = "", bool sizes_unknown = false, bool utf8_names = false) {
    struct LocaleScope {
        locale_t previous = static_cast<locale_t>(0);
        explicit LocaleScope(bool on) {
            if (on) previous = uselocale(newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0)));
        }
        ~LocaleScope() {
            if (previous) freelocale(uselocale(previous));
        }
    } locale(utf8_names);
    std::unique_ptr<struct archive, decltype(&archive_write_free)> w(archive_write_new(), archive_write_free);
    EXPECT_EQ(archive_write_set_format_zip(w.get()), ARCHIVE_OK);
    if (utf8_names) {
        EXPECT_EQ(archive_write_set_options(w.get(), "zip:hdrcharset=UTF-8"), ARCHIVE_OK) << archive_error_string(w.get());
    }
    if (!encryption.empty()) {
        EXPECT_EQ(archive_write_set_options(w.get(), ("zip:encryption=" + encryption).c_str()), ARCHIVE_OK) << archive_error_string(w.get());
        EXPECT_EQ(archive_write_set_passphrase(w.get(), "secret"), ARCHIVE_OK);
    }
    std::vector<char> buffer(8u << 20);
    std::size_t used = 0;
    EXPECT_EQ(archive_write_open_memory(w.get(), buffer.data(), buffer.size(), &used), ARCHIVE_OK);
    for (const auto& f : files) {
        std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
        archive_entry_set_pathname(e.get(), f.path.c_str());
        const bool dir = !f.path.empty() && f.path.back() == '/';
        archive_entry_set_filetype(e.get(), dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e.get(), 0644);
        if (!sizes_unknown || dir) archive_entry_set_size(e.get(), static_cast<la_int64_t>(f.bytes.size()));
        EXPECT_EQ(archive_write_header(w.get(), e.get()), ARCHIVE_OK) << archive_error_string(w.get());
        if (!dir) {
            EXPECT_EQ(archive_write_data(w.get(), f.bytes.data(), f.bytes.size()), static_cast<la_ssize_t>(f.bytes.size()));
        }
    }
    EXPECT_EQ(archive_write_close(w.get()), ARCHIVE_OK);
    return std::string(buffer.data(), used);
}

// The same ZIP without its central directory (cut in transit): libarchive then reads the
// local headers one after another.
std::string without_central_directory(const std::string& zip) {
    const std::size_t at = zip.find("PK\x01\x02");
    EXPECT_NE(at, std::string::npos);
    return zip.substr(0, at);
}

// A tar (pax), compressed with libarchive's `filter` ("gzip", "bzip2", "xz", "" for none), or
// a 7-Zip archive when `format` is "7zip".
std::string tar_of(const std::vector<File>& files, const std::string& filter, const std::string& format = "pax") {
    std::unique_ptr<struct archive, decltype(&archive_write_free)> w(archive_write_new(), archive_write_free);
    EXPECT_EQ(archive_write_set_format_by_name(w.get(), format.c_str()), ARCHIVE_OK) << archive_error_string(w.get());
    if (!filter.empty()) {
        EXPECT_EQ(archive_write_add_filter_by_name(w.get(), filter.c_str()), ARCHIVE_OK) << archive_error_string(w.get());
    }
    std::vector<char> buffer(64u << 20);
    std::size_t used = 0;
    EXPECT_EQ(archive_write_open_memory(w.get(), buffer.data(), buffer.size(), &used), ARCHIVE_OK);
    for (const auto& f : files) {
        std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
        archive_entry_set_pathname(e.get(), f.path.c_str());
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0644);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(f.bytes.size()));
        EXPECT_EQ(archive_write_header(w.get(), e.get()), ARCHIVE_OK) << archive_error_string(w.get());
        EXPECT_EQ(archive_write_data(w.get(), f.bytes.data(), f.bytes.size()), static_cast<la_ssize_t>(f.bytes.size()));
    }
    EXPECT_EQ(archive_write_close(w.get()), ARCHIVE_OK);
    return std::string(buffer.data(), used);
}

std::uint32_t crc32_of(const std::string& bytes) {
    std::uint32_t crc = 0xFFFFFFFF;
    for (const char c : bytes) {
        crc ^= static_cast<unsigned char>(c);
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

// A RAR 4 archive of stored (uncompressed) files, laid out as WinRAR's format note gives it:
// the marker, the archive header, a header per file (each header's CRC is the low 16 bits
// of the CRC-32 of its bytes after the CRC) then its data, and the end block. libarchive
// has no RAR writer, so the test writes one.
std::string rar_of(const std::vector<File>& files) {
    const auto put16 = [](std::string& s, std::uint32_t v) { s += static_cast<char>(v & 0xFF), s += static_cast<char>((v >> 8) & 0xFF); };
    const auto put32 = [&](std::string& s, std::uint32_t v) { put16(s, v & 0xFFFF), put16(s, v >> 16); };
    const auto block = [&](std::string body) {  // body: from HEAD_TYPE on, with HEAD_SIZE left as two zero bytes at 3
        const std::uint32_t size = static_cast<std::uint32_t>(body.size() + 2);
        body[3] = static_cast<char>(size & 0xFF);
        body[4] = static_cast<char>(size >> 8);
        std::string out;
        put16(out, crc32_of(body) & 0xFFFF);
        return out + body;
    };
    std::string rar("Rar!\x1A\x07\x00", 7);
    std::string main_header(1, '\x73');
    put16(main_header, 0);
    put16(main_header, 0);
    main_header += std::string(6, '\0');
    rar += block(main_header);
    for (const auto& f : files) {
        std::string h(1, '\x74');
        put16(h, 0x8000);
        put16(h, 0);
        put32(h, static_cast<std::uint32_t>(f.bytes.size()));  // packed size
        put32(h, static_cast<std::uint32_t>(f.bytes.size()));  // unpacked size
        h += '\x03';                                            // host OS: Unix
        put32(h, crc32_of(f.bytes));
        put32(h, 0x5921A000);  // 2024-09-01, DOS time
        h += '\x14';           // version 2.0 needed
        h += '\x30';           // method: stored
        put16(h, static_cast<std::uint32_t>(f.path.size()));
        put32(h, 0100644);
        h += f.path;
        rar += block(h) + f.bytes;
    }
    std::string end(1, '\x7B');
    put16(end, 0x4000);
    put16(end, 0);
    return rar + block(end);
}

struct Att {
    std::string type, name, bytes;
};

std::string email_with(const std::vector<Att>& atts, const std::string& body = "Please find my receipts attached") {
    std::string m =
        "From: Ahmad <ahmad@example.my>\r\nTo: claims@tpa.example.my\r\nSubject: Claim\r\nDate: Fri, 27 Dec 2024 09:00:00 +0800\r\n"
        "Message-ID: <z1@example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B1\"\r\n\r\n"
        "--B1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
        body + "\r\n";
    for (const auto& a : atts)
        m += "--B1\r\nContent-Type: " + a.type + "\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"" +
             a.name + "\"\r\n\r\n" + test::base64_mime(a.bytes);
    return m + "--B1--\r\n";
}

Document eml(const std::string& text) { return Document::from_bytes("claim.eml", "message/rfc822", Bytes(text.begin(), text.end())); }

NodeRunner mime(const std::string& config = "{}") { return NodeRunner::from_plugin(kPlugin, "transform.mime", config); }

std::string bytes_of(const docpipe::testing::Emitted& e) {
    const auto& b = *e.doc->parts.at(0).bytes;
    return std::string(b.begin(), b.end());
}

// Runs the email and returns the BadInput's text ("" when it did not fail).
std::string failure_of(NodeRunner& runner, const std::string& text) {
    try {
        runner.process(eml(text));
    } catch (const BadInput& e) {
        return e.what();
    }
    return "";
}

TEST(MimeZip, TheReceiptsInsideAZipAreClaimAttachments) {
    const std::string small_pdf = "%PDF-1.4\n" + std::string(9000, ' ') + "\n%%EOF\n";
    const std::string zip = zip_of({{"claims/", ""},
                                    {"claims/IMG_0001.jpg", receipt()},
                                    {"claims/bill.pdf", small_pdf},
                                    {"claims/notes.txt", "see the receipts"},
                                    {"__MACOSX/claims/._IMG_0001.jpg", std::string(4096, 'x')}});
    for (const std::string& type : {std::string("application/zip"), std::string("application/octet-stream"),
                                    std::string("application/x-zip-compressed")}) {
        auto runner = mime();
        auto out = runner.process(eml(email_with({{type, "receipts.zip", zip}})));
        ASSERT_EQ(out.size(), 2u) << type;
        EXPECT_EQ(out[0].doc->attributes.at("filename"), "IMG_0001.jpg");
        EXPECT_EQ(out[0].doc->attributes.at("archive"), "receipts.zip");
        EXPECT_EQ(out[0].doc->parts.at(0).media_type, "image/jpeg");
        EXPECT_EQ(bytes_of(out[0]), receipt());
        EXPECT_EQ(out[0].doc->attributes.at("attachment"), "1/2");
        EXPECT_EQ(out[1].doc->attributes.at("filename"), "bill.pdf");
        EXPECT_EQ(out[1].doc->parts.at(0).media_type, "application/pdf");
        EXPECT_EQ(bytes_of(out[1]), small_pdf);
        // The email's own fields go with each file, and the text file is named as skipped; the
        // macOS resource fork is no attachment at all.
        EXPECT_EQ(out[1].doc->attributes.at("message_id"), "z1@example");
        const std::string skipped = out[0].doc->attributes.at("skipped_attachments");
        EXPECT_EQ(skipped, "'receipts.zip/notes.txt': not an image or PDF (text/plain)");
    }
}

TEST(MimeZip, AZipNextToAPlainAttachmentAddsItsFiles) {
    auto runner = mime();
    auto out = runner.process(eml(email_with({{"image/jpeg", "first.jpg", receipt()},
                                              {"application/zip", "more.zip", zip_of({{"second.jpg", receipt()}})}})));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "first.jpg");
    EXPECT_EQ(out[0].doc->attributes.count("archive"), 0u);
    EXPECT_EQ(out[1].doc->attributes.at("filename"), "second.jpg");
    EXPECT_EQ(out[1].doc->attributes.at("archive"), "more.zip");
}

TEST(MimeZip, APasswordProtectedReceiptFailsTheEmailNamingIt) {
    for (const std::string& encryption : {std::string("zipcrypt"), std::string("aes256")}) {
        auto runner = mime();
        const std::string why = failure_of(runner, email_with({{"application/zip", "secret.zip", zip_of({{"r.jpg", receipt()}}, encryption)}}));
        EXPECT_NE(why.find("claim.eml: no claim attachment could be read: 'secret.zip/r.jpg': password-protected: it cannot be read "
                           "without the password"),
                  std::string::npos)
            << encryption << ": " << why;
    }
}

TEST(MimeZip, ADamagedZipFailsNamingItAndKeepsWhatCameBeforeTheDamage) {
    auto runner = mime();
    // Nothing but a local header's signature and zeros: no file can be read.
    const std::string junk = "PK\x03\x04" + std::string(50000, '\0');
    std::string why = failure_of(runner, email_with({{"application/zip", "bomb.zip", junk}}));
    EXPECT_NE(why.find("claim.eml: no claim attachment could be read: 'bomb.zip': the archive is damaged after its first 1 files: a "
                       "header that cannot be read"),
              std::string::npos)
        << why;

    // Cut in transit after the first file: that file goes on, the cut is named beside it.
    const std::string whole = zip_of({{"a.jpg", receipt()}, {"b.jpg", receipt() + "second"}});
    const std::string cut = whole.substr(0, receipt().size() + 200);
    auto out = runner.process(eml(email_with({{"application/zip", "cut.zip", cut}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "a.jpg");
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'cut.zip': "), std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");

    // Not a ZIP at all, under a ZIP's name: said, not skipped.
    why = failure_of(runner, email_with({{"application/octet-stream", "scan.zip", receipt()}}));
    EXPECT_NE(why.find("'scan.zip': not a readable archive (ZIP or tar)"), std::string::npos) << why;
}

TEST(MimeZip, WhatAZipDecompressesToIsBounded) {
    // Zeros compress about a thousandfold: the limits apply to the decompressed bytes.
    // The file limit just fits the receipt; the archive's takes the receipt, the oversized
    // file's bytes read before it was dropped, and 49,000 more.
    const std::size_t per_file = receipt().size() + 1000, per_archive = 2 * receipt().size() + 50000;
    auto runner = mime("{max_attachment_bytes: " + std::to_string(per_file) + ", max_archive_bytes: " + std::to_string(per_archive) + "}");
    const std::string zip = zip_of({{"big.jpg", std::string(3 * receipt().size(), '\0')},
                                    {"ok1.jpg", receipt()},
                                    {"ok2.jpg", std::string(40000, '\0')},
                                    {"late.jpg", std::string(40000, '\0')}});
    ASSERT_LT(zip.size(), receipt().size() + 5000) << "the zeros must have been compressed";
    auto out = runner.process(eml(email_with({{"application/zip", "z.zip", zip}})));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "ok1.jpg");
    EXPECT_EQ(out[1].doc->attributes.at("filename"), "ok2.jpg");
    const std::string skipped = out[0].doc->attributes.at("skipped_attachments");
    EXPECT_NE(skipped.find("'z.zip/big.jpg': over " + std::to_string(per_file) + " bytes when decompressed (max_attachment_bytes)"),
              std::string::npos)
        << skipped;
    EXPECT_NE(skipped.find("'z.zip/late.jpg': the email's archives came to more than " + std::to_string(per_archive) +
                           " bytes when decompressed (max_archive_bytes); the rest is not read"),
              std::string::npos)
        << skipped;

    // The budget is the email's, not each ZIP's: the same files split over two ZIPs.
    auto split = runner.process(eml(email_with({{"application/zip", "one.zip", zip_of({{"big.jpg", std::string(3 * receipt().size(), '\0')},
                                                                                        {"ok1.jpg", receipt()}})},
                                                {"application/zip", "two.zip", zip_of({{"ok2.jpg", std::string(40000, '\0')},
                                                                                        {"late.jpg", std::string(40000, '\0')}})}})));
    ASSERT_EQ(split.size(), 2u);
    EXPECT_EQ(split[1].doc->attributes.at("archive"), "two.zip");
    EXPECT_NE(split[0].doc->attributes.at("skipped_attachments").find("'two.zip/late.jpg': the email's archives came to more than " +
                                                                      std::to_string(per_archive)),
              std::string::npos)
        << split[0].doc->attributes.at("skipped_attachments");

    // Files count towards max_parts like MIME parts do: 60 files in a ZIP with max_parts 50.
    std::vector<File> many;
    for (int i = 0; i < 60; ++i) many.push_back({"r" + std::to_string(i) + ".txt", "x"});
    auto strict = mime("{max_parts: 50}");
    const std::string why = failure_of(strict, email_with({{"application/zip", "many.zip", zip_of(many)}}));
    EXPECT_NE(why.find("claim.eml: no claim attachment could be read: 'many.zip': holds more files than max_parts (50) leaves room for, "
                       "with the email's other parts; not opened"),
              std::string::npos)
        << why;
    // Beside a receipt, only the ZIP is refused: the receipt goes on, the ZIP named.
    auto beside = strict.process(eml(email_with({{"image/jpeg", "r.jpg", receipt()}, {"application/zip", "many.zip", zip_of(many)}})));
    ASSERT_EQ(beside.size(), 1u);
    EXPECT_NE(beside[0].doc->attributes.at("skipped_attachments").find("'many.zip': holds more files than max_parts"), std::string::npos);
    // macOS's resource-fork twins and folders are not the sender's files: 40 photos zipped by
    // macOS (80 entries and a folder) fit max_parts 50.
    std::vector<File> mac{{"photos/", ""}};
    for (int i = 0; i < 40; ++i) {
        mac.push_back({"photos/r" + std::to_string(i) + ".txt", "x"});
        mac.push_back({"__MACOSX/photos/._r" + std::to_string(i) + ".txt", "fork"});
    }
    mac.push_back({"photos/receipt.jpg", receipt()});
    auto mac_out = strict.process(eml(email_with({{"application/zip", "Archive.zip", zip_of(mac)}})));
    ASSERT_EQ(mac_out.size(), 1u);
    EXPECT_EQ(mac_out[0].doc->attributes.at("filename"), "receipt.jpg");
    EXPECT_EQ(mac_out[0].doc->attributes.at("skipped_attachments").find("._r"), std::string::npos);
}

// A ZIP written as a stream puts each file's size after its data. Without the central
// directory libarchive finds such a file's end only by decompressing it, so stepping over a
// file that is not wanted costs as much as reading it, and counts the same.
TEST(MimeZip, StreamedZipsAreBoundedWhenTheirFilesAreSteppedOver) {
    const std::string zeros(3u << 20, '\0');
    const std::string streamed = zip_of({{"notes.txt", zeros}, {"r.jpg", receipt()}}, "", true);
    const mail::ArchiveLimits limits{500, 25u << 20, 1u << 20};
    const auto jpg = [](std::string_view p) { return p.ends_with(".jpg") ? mail::ArchiveWant::Read : mail::ArchiveWant::Skip; };

    const std::string cut = without_central_directory(streamed);
    const mail::ArchiveListing bounded = mail::read_archive(Bytes(cut.begin(), cut.end()), limits, jpg);
    EXPECT_NE(bounded.error.find("the email's archives came to more than 1048576 bytes when decompressed (max_archive_bytes)"), std::string::npos)
        << bounded.error;
    EXPECT_LE(bounded.decompressed, (1u << 20) + 65536) << "decompressing stops at the budget";
    EXPECT_TRUE(bounded.entries.empty() || bounded.entries.back().path != "r.jpg" || bounded.entries.back().bytes.empty());

    // With its central directory the text file is stepped over without a byte decompressed,
    // and the receipt after it is read.
    const mail::ArchiveListing whole = mail::read_archive(Bytes(streamed.begin(), streamed.end()), limits, jpg);
    EXPECT_TRUE(whole.error.empty()) << whole.error;
    ASSERT_EQ(whole.entries.size(), 2u);
    EXPECT_EQ(whole.entries[1].bytes.size(), receipt().size());
    EXPECT_EQ(whole.decompressed, receipt().size()) << "notes.txt must not have been decompressed";

    // A small streamed ZIP without its central directory still gives its receipt.
    const std::string small = without_central_directory(zip_of({{"notes.txt", "hello"}, {"r.jpg", receipt()}}, "", true));
    auto runner = mime();
    auto out = runner.process(eml(email_with({{"application/zip", "phone.zip", small}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());
}

TEST(MimeZip, AnArchiveInsideAZipA7zAndARarAreNamedNotSkipped) {
    auto runner = mime();
    std::string why = failure_of(runner, email_with({{"application/zip", "outer.zip", zip_of({{"inner.zip", zip_of({{"r.jpg", receipt()}})}})}}));
    EXPECT_NE(why.find("'outer.zip/inner.zip': an archive, winmail.dat or S/MIME file inside outer.zip: not opened"), std::string::npos) << why;
    why = failure_of(runner, email_with({{"application/x-7z-compressed", "receipts.7z", tar_of({{"r.jpg", receipt()}}, "", "7zip")}}));
    EXPECT_NE(why.find("'receipts.7z': a 7-Zip or RAR archive: docpipe does not open these"), std::string::npos) << why;
    // libarchive checks no checksum of a file stored in a RAR, nor says when a RAR is one
    // volume of several: a damaged or partial receipt would go on as whole.
    for (const auto& [type, name] : {std::pair<std::string, std::string>{"application/vnd.rar", "receipts.rar"}, {"application/octet-stream", "scan"}}) {
        why = failure_of(runner, email_with({{type, name, rar_of({{"r.jpg", receipt()}})}}));
        EXPECT_NE(why.find("'" + name + "': a 7-Zip or RAR archive: docpipe does not open these"), std::string::npos) << why;
    }
}

// A tar comes from Linux, some scanners and document systems.
TEST(MimeArchives, TheReceiptsInTarArchivesAreClaimAttachments) {
    const std::string pdf = "%PDF-1.4\n" + std::string(9000, ' ') + "\n%%EOF\n";
    const std::vector<File> files = {{"scans/IMG_1.jpg", receipt()}, {"notes.txt", "see receipts"}, {"scans/bill.pdf", pdf}};
    auto runner = mime();
    for (const auto& [type, name, archive] : {std::tuple<std::string, std::string, std::string>{"application/octet-stream", "receipts.tar.gz", tar_of(files, "gzip")},
                                              {"application/x-bzip2", "receipts.tar.bz2", tar_of(files, "bzip2")},
                                              {"application/x-xz", "receipts.txz", tar_of(files, "xz")},
                                              {"application/x-tar", "receipts.tar", tar_of(files, "")},
                                              {"application/octet-stream", "attachment", tar_of(files, "xz")},
                                              {"application/x-tar", "no-types.tar", tar_of(files, "", "v7tar")}}) {
        auto out = runner.process(eml(email_with({{type, name, archive}})));
        ASSERT_EQ(out.size(), 2u) << name;
        EXPECT_EQ(out[0].doc->attributes.at("filename"), "IMG_1.jpg") << name;
        EXPECT_EQ(out[0].doc->attributes.at("archive"), name);
        EXPECT_EQ(bytes_of(out[0]), receipt()) << name;
        EXPECT_EQ(out[1].doc->parts.at(0).media_type, "application/pdf") << name;
        EXPECT_EQ(bytes_of(out[1]), pdf) << name;
        EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'" + name + "/notes.txt': not an image or PDF"), std::string::npos)
            << out[0].doc->attributes.at("skipped_attachments");
    }
    // An Office file's parts in a tar are no Office file: the receipt beside them is read.
    auto out = runner.process(eml(email_with({{"application/x-tar", "t.tar", tar_of({{"mimetype", "x"}, {"r.jpg", receipt()}}, "")}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());
}

// One file compressed alone ("gzip receipt.pdf" on Linux, some scanners' "Save as .gz"):
// before, it was "not a readable archive (ZIP or tar)".
TEST(MimeArchives, AFileCompressedAloneIsReadUnderItsOwnName) {
    const std::string pdf = "%PDF-1.4\n" + std::string(9000, ' ') + "\n%%EOF\n";
    auto runner = mime();
    for (const auto& [filter, name, inside, media_type] :
         {std::tuple<std::string, std::string, std::string, std::string>{"gzip", "receipt.jpg.gz", receipt(), "image/jpeg"},
          {"bzip2", "bill.pdf.bz2", pdf, "application/pdf"},
          {"xz", "Receipt.JPG.XZ", receipt(), "image/jpeg"},
          {"gzip", "scan.gz", pdf, "application/pdf"}}) {  // a name that says nothing: the bytes decide
        auto out = runner.process(eml(email_with({{"application/octet-stream", name, tar_of({{"x", inside}}, filter, "raw")}})));
        ASSERT_EQ(out.size(), 1u) << name;
        EXPECT_EQ(bytes_of(out[0]), inside) << name;
        EXPECT_EQ(out[0].doc->parts.at(0).media_type, media_type) << name;
        EXPECT_EQ(out[0].doc->attributes.at("filename"), name.substr(0, name.rfind('.'))) << name;
        EXPECT_EQ(out[0].doc->attributes.at("archive"), name);
    }
    // A changed byte fails gzip's CRC: the file is named as damaged, not read.
    std::string gz = tar_of({{"x", receipt()}}, "gzip", "raw");
    gz[gz.size() / 2] ^= 0x01;
    std::string why = failure_of(runner, email_with({{"application/gzip", "receipt.jpg.gz", gz}}));
    EXPECT_NE(why.find("'receipt.jpg.gz/receipt.jpg': damaged: its gzip data do not check out"), std::string::npos) << why;
    // A name that says something else than its bytes: the bytes say what it is.
    for (const std::string name : {"receipt.zip.gz", "scan.txt.gz"}) {
        auto odd = runner.process(eml(email_with({{"application/gzip", name, tar_of({{"x", receipt()}}, "gzip", "raw")}})));
        ASSERT_EQ(odd.size(), 1u) << name;
        EXPECT_EQ(odd[0].doc->parts.at(0).media_type, "image/jpeg") << name;
        EXPECT_EQ(odd[0].doc->attributes.at("filename"), name.substr(0, name.find('.'))) << name;
    }
    // A second gzip member or bzip2 stream whose header was damaged: the file is not whole.
    // (Both decoders stop there without a word; pbzip2 writes a stream per 900 KB.)
    const std::string first = receipt().substr(0, 12000), second = receipt().substr(12000);
    for (const std::string filter : {"gzip", "bzip2"}) {
        std::string joined = tar_of({{"x", first}}, filter, "raw") + tar_of({{"x", second}}, filter, "raw");
        auto whole = runner.process(eml(email_with({{"application/octet-stream", "r.jpg." + std::string(filter == "gzip" ? "gz" : "bz2"), joined}})));
        ASSERT_EQ(whole.size(), 1u) << filter;
        EXPECT_EQ(bytes_of(whole[0]), receipt()) << filter << ": members and streams one after another are one file";
        joined[tar_of({{"x", first}}, filter, "raw").size() + 1] ^= 0x01;
        why = failure_of(runner, email_with({{"application/octet-stream", "r.jpg.gz", joined}}));
        EXPECT_NE(why.find("damaged: it holds data after its end"), std::string::npos) << filter << ": " << why;
    }
    // A tar split across gzip members or bzip2 streams (pbzip2 writes one per 900 KB) whose
    // second header was damaged lost the files in it without a word.
    for (const std::string filter : {"gzip", "bzip2"}) {
        const std::string tar = tar_of({{"a.txt", std::string(4096, 'a')}, {"r.jpg", receipt()}}, "");
        std::string split = tar_of({{"x", tar.substr(0, 5120)}}, filter, "raw");
        const std::size_t second = split.size();
        split += tar_of({{"x", tar.substr(5120)}}, filter, "raw");
        split[second] ^= 0x20;
        const std::string name = "receipts.tar." + std::string(filter == "gzip" ? "gz" : "bz2");
        why = failure_of(runner, email_with({{"application/octet-stream", name, split}}));
        EXPECT_NE(why.find("'" + name + "': the archive is damaged"), std::string::npos) << filter << ": " << why;
        // Split where a file ends, its end marker in the first part: only the data after it tell.
        const std::string whole_tar = tar_of({{"r1.jpg", receipt()}}, "") + tar_of({{"r2.jpg", receipt()}}, "");
        const std::size_t cut = tar_of({{"r1.jpg", receipt()}}, "").size();
        std::string at_marker = tar_of({{"x", whole_tar.substr(0, cut)}}, filter, "raw");
        const std::size_t next = at_marker.size();
        at_marker += tar_of({{"x", whole_tar.substr(cut)}}, filter, "raw");
        at_marker[next] ^= 0x20;
        auto kept = runner.process(eml(email_with({{"application/octet-stream", name, at_marker}})));
        ASSERT_EQ(kept.size(), 1u) << filter;
        EXPECT_EQ(kept[0].doc->attributes.at("filename"), "r1.jpg");
        EXPECT_NE(kept[0].doc->attributes.at("skipped_attachments").find("'" + name + "': the archive is damaged: it holds data after its end (a "
                                                                         "damaged part, or something joined to it); files after the last "
                                                                         "one listed may be missing"),
                  std::string::npos)
            << filter << ": " << kept[0].doc->attributes.at("skipped_attachments");
    }
    // An empty .gz is no archive, and not damaged either.
    why = failure_of(runner, email_with({{"application/gzip", "empty.gz", tar_of({{"x", ""}}, "gzip", "raw")}}));
    EXPECT_NE(why.find("'empty.gz': not a readable archive (ZIP or tar)"), std::string::npos) << why;
    // Its bytes, not its name, say what it is.
    auto named_pdf = runner.process(eml(email_with({{"application/gzip", "receipt.pdf.gz", tar_of({{"x", receipt()}}, "gzip", "raw")}})));
    ASSERT_EQ(named_pdf.size(), 1u);
    EXPECT_EQ(named_pdf[0].doc->parts.at(0).media_type, "image/jpeg");

    // Compressed twice: refused, not checked on the wrong layer.
    why = failure_of(runner, email_with({{"application/gzip", "receipt.jpg.bz2.gz", tar_of({{"x", tar_of({{"x", receipt()}}, "bzip2", "raw")}}, "gzip", "raw")}}));
    EXPECT_NE(why.find("compressed twice"), std::string::npos) << why;
    why = failure_of(runner, email_with({{"application/gzip", "r.tar.xz.gz", tar_of({{"x", tar_of({{"r.jpg", receipt()}}, "xz")}}, "gzip", "raw")}}));
    EXPECT_NE(why.find("compressed twice"), std::string::npos) << why;

    // Under a tar's name although no tar: the bytes say what it is.
    auto tgz = runner.process(eml(email_with({{"application/x-gtar", "r.tgz", tar_of({{"x", receipt()}}, "gzip", "raw")}})));
    ASSERT_EQ(tgz.size(), 1u);
    EXPECT_EQ(tgz[0].doc->parts.at(0).media_type, "image/jpeg");
    // Damage so early that nothing can be decompressed (a bzip2 block's CRC): named as damaged.
    std::string bz = tar_of({{"x", receipt()}}, "bzip2", "raw");
    bz[bz.size() / 2] ^= 0x01;
    why = failure_of(runner, email_with({{"application/x-bzip2", "receipt.jpg.bz2", bz}}));
    EXPECT_NE(why.find("'receipt.jpg.bz2': the archive is damaged: its compressed data do not check out"), std::string::npos) << why;
    bz = tar_of({{"x", receipt()}}, "bzip2", "raw");
    bz[200] ^= 0x01;  // in the first bytes: the first 4 KB come out as no JPEG
    why = failure_of(runner, email_with({{"application/x-bzip2", "receipt.jpg.bz2", bz}}));
    EXPECT_NE(why.find("'receipt.jpg.bz2': the archive is damaged: its compressed data do not check out"), std::string::npos) << why;
    // A compressed file that is no claim is not checked to its end, and what was read is charged.
    const std::string big_text = tar_of({{"x", std::string(50u << 20, 'A')}}, "bzip2", "raw");
    mail::ArchiveListing text = mail::read_archive(Bytes(big_text.begin(), big_text.end()), mail::ArchiveLimits{},
                                                   [](std::string_view) { return mail::ArchiveWant::Sniff; },
                                                   [](const Bytes&) { return false; });
    EXPECT_NE(text.error.find("not a readable archive (ZIP or tar)"), std::string::npos) << text.error;
    EXPECT_GE(text.decompressed, 4096u);
    EXPECT_LT(text.decompressed, 2u << 20) << "not decompressed to its end";
    // A file over max_attachment_bytes is charged what it may take, not the email's budget:
    // the receipt in a ZIP after it is still read.
    const std::size_t per_file = receipt().size() + 100;
    auto bounded = mime("{max_attachment_bytes: " + std::to_string(per_file) + ", max_archive_bytes: " + std::to_string(4 * per_file) + "}");
    auto both = bounded.process(eml(email_with({{"application/gzip", "photo.jpg.gz", tar_of({{"x", receipt() + std::string(20 * per_file, '\0')}}, "gzip", "raw")},
                                                {"application/zip", "receipts.zip", zip_of({{"r.jpg", receipt()}})}})));
    ASSERT_EQ(both.size(), 1u);
    EXPECT_EQ(both[0].doc->attributes.at("archive"), "receipts.zip");
    EXPECT_NE(both[0].doc->attributes.at("skipped_attachments").find("'photo.jpg.gz/photo.jpg': over " + std::to_string(per_file)), std::string::npos)
        << both[0].doc->attributes.at("skipped_attachments");

    // What is no image or PDF is still no readable archive; over max_attachment_bytes is said.
    why = failure_of(runner, email_with({{"application/gzip", "notes.txt.gz", tar_of({{"x", std::string(5000, 'n')}}, "gzip", "raw")}}));
    EXPECT_NE(why.find("'notes.txt.gz': not a readable archive (ZIP or tar)"), std::string::npos) << why;
    auto small = mime("{max_attachment_bytes: " + std::to_string(receipt().size() + 100) + "}");
    auto out = small.process(eml(email_with({{"image/jpeg", "r.jpg", receipt()},
                                             {"application/gzip", "bill.pdf.gz", tar_of({{"x", pdf + std::string(receipt().size(), ' ')}}, "gzip", "raw")}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'bill.pdf.gz/bill.pdf': over " + std::to_string(receipt().size() + 100) +
                                                                     " bytes when decompressed (max_attachment_bytes)"),
              std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");
}

// Found by a probe: a tar whose first header was zeroed ends at once, and was "an archive
// with no files in it", its receipts lost without a word.
TEST(MimeArchives, ATarWhoseFirstHeaderIsZeroedIsNamed) {
    auto runner = mime();
    std::string tar = tar_of({{"r1.jpg", receipt()}, {"r2.jpg", receipt()}}, "");
    std::fill(tar.begin(), tar.begin() + 512, '\0');
    std::string why = failure_of(runner, email_with({{"application/x-tar", "receipts.tar", tar}}));
    EXPECT_NE(why.find("'receipts.tar': the archive holds data after its end marker"), std::string::npos) << why;
    // Also when the stream is longer than the budget, so that its end is never checked.
    std::string long_tar = tar_of({{"r1.jpg", receipt()}, {"zeros.bin", std::string(3u << 20, '\0')}}, "");
    std::fill(long_tar.begin(), long_tar.begin() + 512, '\0');
    auto small = mime("{max_archive_bytes: " + std::to_string(1u << 20) + "}");
    why = failure_of(small, email_with({{"application/gzip", "receipts.tar.gz", tar_of({{"x", long_tar}}, "gzip", "raw")}}));
    EXPECT_NE(why.find("'receipts.tar.gz': the archive decompresses to more than 1048576 bytes (max_archive_bytes) and its reading stopped early"),
              std::string::npos)
        << why;
}

// Found by a probe: in a ZIP read as a stream (a .zip.bz2), libarchive steps over a local
// header whose signature was damaged to the next one, and that file was lost without a word.
TEST(MimeArchives, AFileLostInACompressedZipIsNamed) {
    auto runner = mime();
    const std::string zip = zip_of({{"r1.jpg", receipt()}, {"r2.jpg", receipt()}, {"scans/", ""}});
    auto whole = runner.process(eml(email_with({{"application/x-bzip2", "r.zip.bz2", tar_of({{"x", zip}}, "bzip2", "raw")}})));
    ASSERT_EQ(whole.size(), 2u) << "a whole one is read, its folder counted";
    std::string damaged = zip;
    const std::size_t second = damaged.find("PK\x03\x04", 4);
    ASSERT_NE(second, std::string::npos);
    damaged[second + 2] = 'X';
    auto out = runner.process(eml(email_with({{"application/x-bzip2", "r.zip.bz2", tar_of({{"x", damaged}}, "bzip2", "raw")}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "r1.jpg");
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'r.zip.bz2': the archive is damaged: its directory lists 3 entries, and 2 were found"),
              std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");
}

// A ZIP inside a compression (.zip.bz2) is read as a stream: what is stepped over in it is
// decompressed and counted too (found by a review: 200 MB passed a 1 MB budget). A tar's hard
// link is a second name of a file already read, not an empty file of its own.
TEST(MimeArchives, ACompressedZipIsBoundedAndHardLinksAreNoFiles) {
    const std::string zip = zip_of({{"big.txt", std::string(3u << 20, 'z')}, {"r.jpg", receipt()}});
    std::unique_ptr<struct archive, decltype(&archive_write_free)> w(archive_write_new(), archive_write_free);
    ASSERT_EQ(archive_write_set_format_raw(w.get()), ARCHIVE_OK);
    ASSERT_EQ(archive_write_add_filter_bzip2(w.get()), ARCHIVE_OK);
    std::vector<char> buffer(8u << 20);
    std::size_t used = 0;
    ASSERT_EQ(archive_write_open_memory(w.get(), buffer.data(), buffer.size(), &used), ARCHIVE_OK);
    std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), "data");
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(zip.size()));
    ASSERT_EQ(archive_write_header(w.get(), e.get()), ARCHIVE_OK);
    ASSERT_EQ(archive_write_data(w.get(), zip.data(), zip.size()), static_cast<la_ssize_t>(zip.size()));
    ASSERT_EQ(archive_write_close(w.get()), ARCHIVE_OK);
    const std::string zip_bz2(buffer.data(), used);
    auto runner = mime(R"({"max_archive_bytes": 1048576})");
    const std::string why = failure_of(runner, email_with({{"application/x-bzip2", "r.zip.bz2", zip_bz2}}));
    EXPECT_NE(why.find("'r.zip.bz2': the email's archives came to more than 1048576 bytes when decompressed"), std::string::npos) << why;
    auto roomy = mime();
    auto out = roomy.process(eml(email_with({{"application/x-bzip2", "r.zip.bz2", zip_bz2}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());

    // A hard link in a tar (written by libarchive: the link's entry carries no data).
    std::unique_ptr<struct archive, decltype(&archive_write_free)> t(archive_write_new(), archive_write_free);
    ASSERT_EQ(archive_write_set_format_pax_restricted(t.get()), ARCHIVE_OK);
    used = 0;
    ASSERT_EQ(archive_write_open_memory(t.get(), buffer.data(), buffer.size(), &used), ARCHIVE_OK);
    std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> file(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(file.get(), "r.jpg");
    archive_entry_set_filetype(file.get(), AE_IFREG);
    archive_entry_set_size(file.get(), static_cast<la_int64_t>(receipt().size()));
    ASSERT_EQ(archive_write_header(t.get(), file.get()), ARCHIVE_OK);
    ASSERT_EQ(archive_write_data(t.get(), receipt().data(), receipt().size()), static_cast<la_ssize_t>(receipt().size()));
    std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> link(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(link.get(), "copy.jpg");
    archive_entry_set_filetype(link.get(), AE_IFREG);
    archive_entry_set_hardlink(link.get(), "r.jpg");
    archive_entry_set_size(link.get(), 0);
    ASSERT_EQ(archive_write_header(t.get(), link.get()), ARCHIVE_OK);
    ASSERT_EQ(archive_write_close(t.get()), ARCHIVE_OK);
    out = roomy.process(eml(email_with({{"application/x-tar", "linked.tar", std::string(buffer.data(), used)}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.count("skipped_attachments"), 0u) << out[0].doc->attributes.at("skipped_attachments");
}

// libarchive checks no gzip CRC, and stops reading a tar at its end marker, before the last
// checks of a bzip2 or xz stream: a changed byte went on into a claim, or lost a receipt,
// unsaid (found by a re-probe). The compression's own checks are run first. And a ZIP entry
// whose mode was changed to a special file is named, not dropped.
TEST(MimeArchives, DamageInACompressedTarOrAZipModeIsSaid) {
    auto runner = mime();
    const std::string tgz = tar_of({{"r.jpg", receipt()}}, "gzip");
    std::string crc = tgz;
    crc[crc.size() - 6] ^= 0x01;  // in the CRC-32 of the gzip trailer
    std::string why = failure_of(runner, email_with({{"application/gzip", "r.tgz", crc}}));
    EXPECT_NE(why.find("'r.tgz': the archive is damaged: its gzip data do not check out (zlib: incorrect data check)"), std::string::npos)
        << why;
    std::string middle = tgz;
    middle[middle.size() / 2] ^= 0x20;
    why = failure_of(runner, email_with({{"application/gzip", "r.tgz", middle}}));
    EXPECT_NE(why.find("'r.tgz': the archive is damaged: "), std::string::npos) << why;
    for (const char* filter : {"bzip2", "xz"}) {
        std::string packed = tar_of({{"r.jpg", receipt()}}, filter);
        packed[packed.size() - 30] ^= 0x01;
        why = failure_of(runner, email_with({{"application/octet-stream", "r.tar", packed}}));
        EXPECT_NE(why.find("'r.tar': "), std::string::npos) << filter << ": " << why;
    }

    // A tar cut where a file ends, or whose second gzip member was lost (pigz and pbzip2 write
    // several): libarchive takes it as ended; its missing end marker says otherwise.
    const std::string pdf = "%PDF-1.4\n" + std::string(9000, ' ') + "\n%%EOF\n";
    const std::string plain = tar_of({{"r.jpg", receipt()}, {"invoice.pdf", pdf}}, "");
    const std::string first_file_only = plain.substr(0, 512 + ((receipt().size() + 511) / 512) * 512);
    auto out = runner.process(eml(email_with({{"application/x-tar", "cut.tar", first_file_only}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'cut.tar': the archive ends without a tar's end marker"),
              std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");
    {
        z_stream z{};
        ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
        std::string member(first_file_only.size() + 1000, '\0');
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(first_file_only.data()));
        z.avail_in = static_cast<uInt>(first_file_only.size());
        z.next_out = reinterpret_cast<Bytef*>(member.data());
        z.avail_out = static_cast<uInt>(member.size());
        ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
        member.resize(member.size() - z.avail_out);
        deflateEnd(&z);
        const std::string second_member_lost = member + std::string("\x1f\x8c") + std::string(40, 'x');
        out = runner.process(eml(email_with({{"application/gzip", "two.tgz", second_member_lost}})));
        ASSERT_EQ(out.size(), 1u);
        EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'two.tgz': the archive ends without a tar's end marker"),
                  std::string::npos)
            << out[0].doc->attributes.at("skipped_attachments");
    }

    // Two tars joined with cat (or two .tar.gz): libarchive stops at the first end marker, so
    // the second's files were lost unsaid; they are named now (found by a fourth probe).
    for (const std::string& filter : {std::string(""), std::string("gzip")}) {
        const std::string joined = tar_of({{"r.jpg", receipt()}}, filter) + tar_of({{"invoice.pdf", pdf}}, filter);
        out = runner.process(eml(email_with({{"application/x-tar", "joined.tar", joined}})));
        ASSERT_EQ(out.size(), 1u) << filter;
        EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'joined.tar': the archive holds data after its end marker"),
                  std::string::npos)
            << filter << ": " << out[0].doc->attributes.at("skipped_attachments");
    }
    // Over what is left of the budget, the files before it are still read.
    {
        auto tight = mime(R"({"max_archive_bytes": 1048576})");
        const std::string big = tar_of({{"r.jpg", receipt()}, {"video.mp4", std::string(2u << 20, 'v')}, {"late.jpg", receipt()}}, "gzip");
        out = tight.process(eml(email_with({{"application/gzip", "big.tgz", big}})));
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0].doc->attributes.at("filename"), "r.jpg");
        EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("(max_archive_bytes)"), std::string::npos);
    }

    std::string zip = zip_of({{"receipt.jpg", receipt()}, {"bill.jpg", receipt()}});
    const std::size_t directory = zip.find("PK\x01\x02");
    ASSERT_NE(directory, std::string::npos);
    zip[directory + 5] = 3;                                  // made by: Unix, so the mode is read
    zip[directory + 40] = 0, zip[directory + 41] = '\x20';  // external attributes: mode 020000, a character device
    out = runner.process(eml(email_with({{"application/zip", "z.zip", zip}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'z.zip/receipt.jpg': stored as a folder or special file that carries data"),
              std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");
}

// A compressed tar's headers are decompressed too: megabytes of GNU long names charge the
// budget like file bytes do.
TEST(MimeArchives, LongHeadersInACompressedTarCountTowardsTheBudget) {
    std::vector<File> files;
    for (int i = 0; i < 12; ++i) files.push_back({std::to_string(i) + std::string(100'000, 'n') + ".txt", "x"});
    files.push_back({"r.jpg", receipt()});
    const std::string tgz = tar_of(files, "gzip", "gnutar");
    auto runner = mime(R"({"max_archive_bytes": 1048576})");
    const std::string why = failure_of(runner, email_with({{"application/gzip", "names.tgz", tgz}}));
    EXPECT_NE(why.find("'names.tgz': the email's archives came to more than 1048576 bytes when decompressed"), std::string::npos) << why;
}

// A compressed tar is one stream: stepping over a file means decompressing it, so what is
// stepped over counts towards max_archive_bytes like what is read.
TEST(MimeArchives, FilesSteppedOverInACompressedTarCountTowardsTheBudget) {
    const std::string tgz = tar_of({{"video.mp4", std::string(3u << 20, '\0')}, {"r.jpg", receipt()}}, "gzip");
    ASSERT_LT(tgz.size(), receipt().size() + 50'000) << "3 MB of zeros compresses to a few KB";
    auto runner = mime(R"({"max_archive_bytes": 1048576})");
    const std::string why = failure_of(runner, email_with({{"application/gzip", "r.tgz", tgz}}));
    EXPECT_NE(why.find("'r.tgz': the email's archives came to more than 1048576 bytes when decompressed (max_archive_bytes)"), std::string::npos)
        << why;
    auto roomy = mime();
    auto out = roomy.process(eml(email_with({{"application/gzip", "r.tgz", tgz}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());
}

// Found by a hostile probe: each of these was "skipped: no claim attachment", its email moved
// to processed/. Each now fails the email (nothing else in it is claimable), naming the file.
TEST(MimeBadInput, OtherArchivesEncryptedFilesAndUnnamedWrappersFailTheEmailNamingThem) {
    auto runner = mime();
    const std::string gzip = "\x1f\x8b\x08" + std::string(200, 'x');
    const struct {
        Att att;
        std::string said;
    } cases[] = {
        {{"application/gzip", "receipts.tar.gz", gzip}, "'receipts.tar.gz': not a readable archive (ZIP or tar)"},
        {{"application/octet-stream", "receipt.jpg.gpg", std::string(300, 'x')}, "'receipt.jpg.gpg': a PGP-encrypted file"},
        {{"application/octet-stream", "attachment", "7z\xbc\xaf\x27\x1c" + std::string(100, 'x')}, "'attachment': a 7-Zip or RAR archive"},
        {{"application/octet-stream", "noname", "\x78\x9f\x3e\x22" + std::string(100, '\0')}, "'noname': an Outlook TNEF attachment"},
        {{"application/zip", "mail.zip", zip_of({{"winmail.dat", "\x78\x9f\x3e\x22" + std::string(100, '\0')}})},
         "'mail.zip/winmail.dat': an archive, winmail.dat or S/MIME file inside mail.zip: not opened"},
        {{"application/zip", "nested.zip", zip_of({{"inner.7z", "7z\xbc\xaf\x27\x1c"}})}, "'nested.zip/inner.7z': a 7-Zip or RAR archive"},
    };
    for (const auto& c : cases) {
        const std::string why = failure_of(runner, email_with({c.att}));
        EXPECT_NE(why.find("no claim attachment could be read: " + c.said), std::string::npos) << c.att.name << ": " << why;
    }
}

// Phones and webmail send receipts as "application/octet-stream" named "receipt", or as
// "WhatsApp Image ....jfif": what the name does not say, the bytes do.
TEST(MimeZip, AFileWhoseNameSaysNothingIsJudgedByItsBytes) {
    auto runner = mime();
    const std::string pdf = "%PDF-1.4\n" + std::string(9000, ' ') + "\n%%EOF\n";
    const std::string zip = zip_of({{"receipt", receipt()}, {"WhatsApp Image 2024-12-27.jfif", receipt()}, {"data.bin", std::string(9000, 't')}});
    auto out = runner.process(eml(email_with({{"application/zip", "z.zip", zip}, {"application/octet-stream", "scan", pdf}})));
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "receipt");
    EXPECT_EQ(out[0].doc->parts.at(0).media_type, "image/jpeg");
    EXPECT_EQ(out[1].doc->parts.at(0).media_type, "image/jpeg");
    EXPECT_EQ(out[2].doc->attributes.at("filename"), "scan");
    EXPECT_EQ(out[2].doc->parts.at(0).media_type, "application/pdf");
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'z.zip/data.bin': not an image or PDF (application/octet-stream)"),
              std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");

    // Only a file's first 4 KB are decompressed to judge it: 3 MB of LICENSE text before the
    // receipt does not spend a 1 MB budget.
    auto budget = mime("{max_archive_bytes: " + std::to_string(receipt().size() + (1u << 20)) + "}");
    auto licensed = budget.process(eml(email_with({{"application/zip", "l.zip", zip_of({{"LICENSE", std::string(3u << 20, 'x')}, {"r.jpg", receipt()}})}})));
    ASSERT_EQ(licensed.size(), 1u) << budget.last_skip_reason();
    EXPECT_EQ(licensed[0].doc->attributes.at("filename"), "r.jpg");

    // A name with an extension of its own says what it is: an Office file (a ZIP inside) sent
    // as octet-stream is a document, not a ZIP of claims; a note quoting "%PDF-" is no PDF.
    const std::string docx = zip_of({{"word/document.xml", "<w/>"}, {"word/media/image1.jpeg", receipt()}});
    EXPECT_TRUE(runner.process(eml(email_with({{"application/octet-stream", "claim_form.docx", docx},
                                                {"application/octet-stream", "notes", "see the %PDF-1.4 copy I sent before"}})))
                    .empty());
    const std::string why = runner.last_skip_reason();
    EXPECT_NE(why.find("'claim_form.docx': not an image or PDF (application/octet-stream)"), std::string::npos) << why;
    EXPECT_NE(why.find("'notes': not an image or PDF (application/octet-stream, and its content is neither)"), std::string::npos) << why;
    // The same Office file with no name to tell: opened, seen to be a document, not taken apart.
    EXPECT_TRUE(runner.process(eml(email_with({{"application/octet-stream", "form", zip_of({{"[Content_Types].xml", "<Types/>"},
                                                                                            {"word/media/image1.jpeg", receipt()}})}})))
                    .empty());
    EXPECT_NE(runner.last_skip_reason().find("'form': an Office or OpenDocument file"), std::string::npos) << runner.last_skip_reason();

    // A dot in a name is no extension unless it is a document's: "Klinik Dr.Tan" is a JPEG, and
    // a print job's PDF (its PJL prefix before the header) is a PDF.
    const std::string pjl = "\x1B%-12345X@PJL JOB\r\n@PJL ENTER LANGUAGE=PDF\r\n" + pdf;
    auto dotted = runner.process(eml(email_with({{"application/octet-stream", "Klinik Dr.Tan", receipt()},
                                                 {"application/zip", "z.zip", zip_of({{"Resit No.A123", receipt()}})},
                                                 {"application/octet-stream", "job", pjl}})));
    ASSERT_EQ(dotted.size(), 3u) << runner.last_skip_reason();
    EXPECT_EQ(dotted[0].doc->parts.at(0).media_type, "image/jpeg");
    EXPECT_EQ(dotted[1].doc->attributes.at("filename"), "Resit No.A123");
    EXPECT_EQ(dotted[2].doc->parts.at(0).media_type, "application/pdf");
}

// A ZIP flags its names as UTF-8 (macOS, Windows, phones). docpipe runs in the "C" locale,
// where libarchive could not convert them and gave no name at all: the receipt was skipped.
TEST(MimeZip, NamesInAnyScriptAreKept) {
    auto runner = mime();
    const std::string zip = zip_of({{"\xe6\x94\xb6\xe6\x8d\xae.jpg", receipt()}, {"re\xc3\xa7u m\xc3\xa9" "dical.jpg", receipt()}}, "", false, true);
    auto out = runner.process(eml(email_with({{"application/zip", "z.zip", zip}})));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "\xe6\x94\xb6\xe6\x8d\xae.jpg");  // 收据.jpg
    EXPECT_EQ(out[1].doc->attributes.at("filename"), "re\xc3\xa7u m\xc3\xa9" "dical.jpg");
}

// libarchive reads the whole central directory before the first entry (1.2 million records
// held 630 MB), so a ZIP with more records than could be read is refused before that. The
// records are counted, not taken from the end record, which can lie; the end record is the one
// libarchive takes, not a fake one in a comment.
TEST(MimeZip, TheCentralDirectoryIsCountedBeforeLibarchiveParsesIt) {
    std::vector<File> folders;
    for (int i = 0; i < 200; ++i) folders.push_back({"d" + std::to_string(i) + "/", ""});
    std::string zip = zip_of(folders);
    const Bytes as_is(zip.begin(), zip.end());
    EXPECT_EQ(mail::central_directory_records(as_is, 1000), 200u);
    EXPECT_EQ(mail::central_directory_records(as_is, 50), 51u) << "counting stops past the limit";
    const mail::ArchiveListing refused = mail::read_archive(as_is, {10, 1000, 100000}, [](std::string_view) { return mail::ArchiveWant::Read; });
    EXPECT_TRUE(refused.too_many_entries);
    // First bytes that claim gzip or tar do not skip the count: libarchive's ZIP reader looks
    // past them (found by a review).
    for (const std::string& prefix : {std::string("\x1f\x8b\x00", 3), std::string("BZh"), std::string(257, 'p') + "ustar"}) {
        const std::string disguised = prefix + zip;
        EXPECT_TRUE(mail::read_archive(Bytes(disguised.begin(), disguised.end()), {10, 1000, 100000},
                                       [](std::string_view) { return mail::ArchiveWant::Read; })
                        .too_many_entries)
            << prefix.substr(0, 3);
    }

    const std::size_t end = zip.rfind("PK\x05\x06");
    ASSERT_NE(end, std::string::npos);
    std::string lying = zip;  // the end record says 1 entry
    lying[end + 8] = lying[end + 10] = 1;
    lying[end + 9] = lying[end + 11] = 0;
    EXPECT_EQ(mail::central_directory_records(Bytes(lying.begin(), lying.end()), 1000), 200u);

    // Junk before the ZIP (a self-extractor) does not move the count.
    const std::string prefixed = std::string(5000, 'J') + zip;
    EXPECT_EQ(mail::central_directory_records(Bytes(prefixed.begin(), prefixed.end()), 1000), 200u);

    // A comment holding a fake end record that claims 60,000 entries on this disk but 1 in all
    // (libarchive passes over it): the real one stands.
    const std::string small = zip_of({{"r.jpg", receipt()}});
    std::string commented = small;
    const std::string fake =
        std::string("PK\x05\x06", 4) + std::string(4, '\0') + std::string("\x60\xEA\x01\x00", 4) + std::string(10, '\0') + " and so on";
    const std::size_t small_end = commented.rfind("PK\x05\x06");
    commented[small_end + 20] = static_cast<char>(fake.size());
    commented += fake;
    EXPECT_EQ(mail::central_directory_records(Bytes(commented.begin(), commented.end()), 1000), 1u);
    auto runner = mime();
    auto out = runner.process(eml(email_with({{"application/zip", "c.zip", commented}})));
    ASSERT_EQ(out.size(), 1u) << runner.last_skip_reason();

    // ZIP64 records whose sizes and offsets wrap around are not followed out of the buffer.
    std::string zip64 = small;
    const std::size_t at = zip64.rfind("PK\x05\x06");
    for (int k = 12; k < 16; ++k) zip64[at + k] = '\xFF';  // size: see the ZIP64 record
    std::string record = std::string("PK\x06\x06", 4) + std::string(52, '\xFF');
    std::string locator = std::string("PK\x06\x07", 4) + std::string(4, '\0') + std::string(8, '\xD8') + std::string(4, '\xFF');
    zip64.insert(at, record + locator);
    EXPECT_EQ(mail::central_directory_records(Bytes(zip64.begin(), zip64.end()), 1000), 1u);

    // A directory that lists no file of a ZIP that holds one: said, not skipped as empty.
    std::string hidden = small;
    const std::size_t e = hidden.rfind("PK\x05\x06");
    for (int k = 8; k < 16; ++k) hidden[e + k] = '\0';                     // 0 entries, a 0-byte directory
    for (int k = 0; k < 4; ++k) hidden[e + 16 + k] = static_cast<char>((e >> (8 * k)) & 0xFF);  // that starts at the end record
    const std::string why = failure_of(runner, email_with({{"application/zip", "h.zip", hidden}}));
    EXPECT_NE(why.find("'h.zip': a ZIP whose directory lists no files although it holds some"), std::string::npos) << why;
}

TEST(MimeZip, NamesThatAreNotUtf8OrCarryPathsAreMadeSafe) {
    auto runner = mime();
    // A CP437 name (0x82 is é there) and a path climbing out of the folder.
    const std::string zip = zip_of({{std::string("caf\x82.jpg"), receipt()}, {"../../etc/r2.jpg", receipt()}});
    auto out = runner.process(eml(email_with({{"application/zip", "z.zip", zip}})));
    ASSERT_EQ(out.size(), 2u);
    for (const auto& o : out) {
        const std::string name = o.doc->attributes.at("filename");
        EXPECT_EQ(name.find('/'), std::string::npos) << name;
        EXPECT_NO_THROW((void)nlohmann::json(name).dump()) << "the name must be valid UTF-8 for the job's JSON";
    }
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "caf_.jpg") << "the byte that is no UTF-8 becomes '_'";
    EXPECT_EQ(out[1].doc->attributes.at("filename"), "r2.jpg");
    // Judged by the name it is given: "r.jpg " (a trailing space) is a receipt.
    auto spaced = runner.process(eml(email_with({{"application/zip", "z.zip", zip_of({{"r.jpg ", receipt()}})}})));
    ASSERT_EQ(spaced.size(), 1u);
    EXPECT_EQ(spaced[0].doc->attributes.at("filename"), "r.jpg");
}

TEST(MimeZip, ReadZipAloneListsWhatItReadAndWhy) {
    const std::string zip = zip_of({{"a.jpg", "aaaa"}, {"b.txt", "bb"}});
    const mail::ArchiveListing listing =
        mail::read_archive(Bytes(zip.begin(), zip.end()), {}, [](std::string_view path) { return path.ends_with(".jpg") ? mail::ArchiveWant::Read : mail::ArchiveWant::Skip; });
    ASSERT_EQ(listing.entries.size(), 2u);
    EXPECT_TRUE(listing.entries[0].wanted);
    EXPECT_EQ(std::string(listing.entries[0].bytes.begin(), listing.entries[0].bytes.end()), "aaaa");
    EXPECT_FALSE(listing.entries[1].wanted);
    EXPECT_TRUE(listing.entries[1].bytes.empty()) << "a file not wanted is not decompressed";
    EXPECT_TRUE(listing.error.empty()) << listing.error;
}

// --- S/MIME and PGP/MIME ------------------------------------------------------------------

struct Signer {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    Signer() {
        key = EVP_EC_gen("P-256");
        cert = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_set_pubkey(cert, key);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("claimant@example.my"), -1, -1, 0);
        X509_set_issuer_name(cert, name);
        X509_sign(cert, key, EVP_sha256());
    }
    ~Signer() {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
};

// What `write` put into a memory BIO; frees `cms`.
template <typename Write>
std::string encoded(CMS_ContentInfo* cms, Write write) {
    BIO* out = BIO_new(BIO_s_mem());
    EXPECT_EQ(write(out, cms), 1);
    char* data = nullptr;
    const long n = BIO_get_mem_data(out, &data);
    std::string bytes(data, static_cast<std::size_t>(n));
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return bytes;
}

std::string der_of(CMS_ContentInfo* cms) { return encoded(cms, [](BIO* out, CMS_ContentInfo* c) { return i2d_CMS_bio(out, c); }); }

// The email Outlook sends when "sign" is on and "send clear-text signed" is off.
// `ber`: streamed, with indefinite lengths, as Outlook and Thunderbird write it.
std::string opaque_signed_email(const std::string& entity, bool ber = false) {
    static Signer signer;
    BIO* in = BIO_new_mem_buf(entity.data(), static_cast<int>(entity.size()));
    std::string ber_or_der;
    if (ber) {
        CMS_ContentInfo* cms = CMS_sign(signer.cert, signer.key, nullptr, in, CMS_BINARY | CMS_STREAM);
        EXPECT_NE(cms, nullptr);
        ber_or_der = encoded(cms, [in](BIO* out, CMS_ContentInfo* c) { return i2d_CMS_bio_stream(out, c, in, CMS_BINARY | CMS_STREAM); });
        EXPECT_EQ(static_cast<unsigned char>(ber_or_der.at(1)), 0x80) << "indefinite length";
    } else {
        CMS_ContentInfo* cms = CMS_sign(signer.cert, signer.key, nullptr, in, CMS_BINARY);
        EXPECT_NE(cms, nullptr);
        ber_or_der = der_of(cms);
    }
    BIO_free(in);
    return "From: a@example.my\r\nSubject: Claim\r\nMessage-ID: <s1@example>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
           "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\n" +
           test::base64_mime(ber_or_der);
}

std::string inner_entity() {
    return "Content-Type: multipart/mixed; boundary=\"IN\"\r\n\r\n"
           "--IN\r\nContent-Type: text/plain\r\n\r\nMy receipt, member M-1234\r\n"
           "--IN\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=r.jpg\r\n\r\n" +
           test::base64_mime(receipt()) + "--IN--\r\n";
}

TEST(MimeSmime, AnOpaqueSignedEmailsAttachmentsAndBodyAreRead) {
    auto runner = mime();
    for (const bool ber : {false, true}) {
        auto out = runner.process(eml(opaque_signed_email(inner_entity(), ber)));
        ASSERT_EQ(out.size(), 1u) << (ber ? "BER (streamed, as mail clients write it)" : "DER");
        EXPECT_EQ(bytes_of(out[0]), receipt());
    }
    auto out = runner.process(eml(opaque_signed_email(inner_entity())));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "r.jpg");
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_EQ(out[0].doc->attributes.at("body_text"), "My receipt, member M-1234");
    EXPECT_EQ(out[0].doc->attributes.at("message_id"), "s1@example");
    EXPECT_EQ(out[0].doc->attributes.count("skipped_attachments"), 0u);
}

TEST(MimeSmime, AnEncryptedEmailFailsSayingItIsEncrypted) {
    static Signer recipient;
    const std::string entity = inner_entity();
    BIO* in = BIO_new_mem_buf(entity.data(), static_cast<int>(entity.size()));
    STACK_OF(X509)* to = sk_X509_new_null();
    sk_X509_push(to, recipient.cert);
    CMS_ContentInfo* cms = CMS_encrypt(to, in, EVP_aes_128_cbc(), CMS_BINARY);
    sk_X509_free(to);
    BIO_free(in);
    ASSERT_NE(cms, nullptr);
    const std::string der = der_of(cms);
    const std::string m = "From: a@example.my\r\nSubject: Claim\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n"
                          "Content-Transfer-Encoding: base64\r\n\r\n" +
                          test::base64_mime(der);
    auto runner = mime();
    const std::string why = failure_of(runner, m);
    // Forwarded next to a receipt: the receipt goes on, the encrypted part named beside it.
    auto out = runner.process(eml(email_with({{"image/jpeg", "r.jpg", receipt()}, {"application/pkcs7-mime", "fwd.p7m", der}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'fwd.p7m': an S/MIME-encrypted email"), std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");
    // Kept apart from the logos and signatures skipped: it may hide a receipt, and the claim
    // goes to a person for it (transform.confidence_router).
    ASSERT_EQ(out[0].doc->attributes.count("unreadable_attachments"), 1u);
    EXPECT_NE(out[0].doc->attributes.at("unreadable_attachments").find("'fwd.p7m': an S/MIME-encrypted email"), std::string::npos)
        << out[0].doc->attributes.at("unreadable_attachments");
    EXPECT_NE(why.find("no claim attachment could be read: 'smime.p7m': an S/MIME-encrypted email: its attachments cannot be read without "
                       "the recipient's private key"),
              std::string::npos)
        << why;

    // Damaged S/MIME: said as such.
    const std::string damaged = "From: a@example.my\r\nSubject: Claim\r\nMIME-Version: 1.0\r\n"
                                "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
                                "Content-Transfer-Encoding: base64\r\n\r\n" +
                                test::base64_mime(std::string(2000, 'Z'));
    EXPECT_NE(failure_of(runner, damaged).find("'smime.p7m': not a readable S/MIME (PKCS #7) structure: "), std::string::npos);
}

TEST(MimeSmime, PgpEncryptedMailFailsAndClearSignedMailIsReadWithoutItsSignature) {
    auto runner = mime();
    const std::string pgp =
        "From: a@example.my\r\nSubject: Claim\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"E\"\r\n\r\n"
        "--E\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        "--E\r\nContent-Type: application/octet-stream; name=encrypted.asc\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nhQEMA\r\n-----END PGP "
        "MESSAGE-----\r\n--E--\r\n";
    EXPECT_NE(failure_of(runner, pgp).find("a PGP-encrypted email (multipart/encrypted): its attachments cannot be read"), std::string::npos);
    // Inside an email with a receipt: named beside it.
    const std::string pgp_part = pgp.substr(pgp.find("Content-Type: multipart/encrypted"));
    std::string mixed = email_with({{"image/jpeg", "r.jpg", receipt()}});
    mixed.insert(mixed.rfind("--B1--"), "--B1\r\n" + pgp_part);
    auto with_receipt = runner.process(eml(mixed));
    ASSERT_EQ(with_receipt.size(), 1u);
    EXPECT_NE(with_receipt[0].doc->attributes.at("skipped_attachments").find("a PGP-encrypted email (multipart/encrypted)"), std::string::npos)
        << with_receipt[0].doc->attributes.at("skipped_attachments");

    const std::string clear_signed = "From: a@example.my\r\nSubject: Claim\r\nMIME-Version: 1.0\r\n"
                                     "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"S\"\r\n\r\n"
                                     "--S\r\n" +
                                     inner_entity() +
                                     "\r\n--S\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n"
                                     "Content-Disposition: attachment; filename=smime.p7s\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n--S--\r\n";
    auto out = runner.process(eml(clear_signed));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_EQ(out[0].doc->attributes.count("skipped_attachments"), 0u) << "the signature is no skipped attachment";
}

// ---- Outlook's winmail.dat (TNEF) -------------------------------------------------------

void put16(std::string& s, std::uint16_t v) {
    s += static_cast<char>(v & 0xFF);
    s += static_cast<char>(v >> 8);
}
void put32(std::string& s, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
}
void pad4(std::string& s) {
    while (s.size() % 4) s += '\0';
}

// One TNEF record: level, attribute id, length, data, and the sum of the data's bytes.
std::string tnef_record(std::uint8_t level, std::uint32_t id, const std::string& data) {
    std::string r(1, static_cast<char>(level));
    put32(r, id);
    put32(r, static_cast<std::uint32_t>(data.size()));
    r += data;
    std::uint32_t sum = 0;
    for (const char c : data) sum += static_cast<unsigned char>(c);
    put16(r, static_cast<std::uint16_t>(sum & 0xFFFF));
    return r;
}

std::string utf16le(const std::u16string& text) {
    std::string out;
    for (const char16_t c : text) put16(out, static_cast<std::uint16_t>(c));
    put16(out, 0);
    return out;
}

// A MAPI property list holding one binary (PT_BINARY) property.
std::string one_binary_property(std::uint16_t id, const std::string& bytes) {
    std::string p;
    put32(p, 1);
    put32(p, (static_cast<std::uint32_t>(id) << 16) | 0x0102);
    put32(p, 1);
    put32(p, static_cast<std::uint32_t>(bytes.size()));
    p += bytes;
    pad4(p);
    return p;
}

struct TnefAttachment {
    std::string title;          // the 8.3 name ("" = no title record)
    std::u16string long_name;   // PR_ATTACH_LONG_FILENAME ("" = none)
    std::string mime_tag;       // PR_ATTACH_MIME_TAG ("" = none)
    std::string data;           // the file
    std::string attached_item;  // a whole TNEF stream: an attached Outlook item in place of a file
    bool data_as_property = false;  // the file in PR_ATTACH_DATA_BIN, as Exchange writes it, not in attAttachData
};

// A winmail.dat as Outlook lays one out: the message's attributes, then per attachment its
// rendering, title, data and MAPI properties (with a named property first, as Outlook adds).
std::string tnef_of(const std::vector<TnefAttachment>& attachments) {
    std::string s;
    put32(s, 0x223E9F78);
    put16(s, 0x5A1F);
    s += tnef_record(1, 0x00089006, std::string("\0\0\1\0", 4));                 // attTnefVersion
    s += tnef_record(1, 0x00069007, std::string("\xE4\x04\0\0\0\0\0\0", 8));     // attOemCodepage 1252
    s += tnef_record(1, 0x00078008, std::string("IPM.Microsoft Mail.Note\0", 24));  // attMessageClass
    s += tnef_record(1, 0x00018004, std::string("Claim for December\0", 19));     // attSubject
    for (const auto& a : attachments) {
        std::string rendering;
        put16(rendering, 1);
        put32(rendering, 0xFFFFFFFF);
        put16(rendering, 0xFFFF);
        put16(rendering, 0xFFFF);
        put32(rendering, 0);
        s += tnef_record(2, 0x00069002, rendering);
        if (!a.title.empty()) s += tnef_record(2, 0x00018010, a.title + '\0');
        if (a.attached_item.empty() && !a.data_as_property) s += tnef_record(2, 0x0006800F, a.data);
        std::string props;
        std::uint32_t count = 0;
        std::string list;
        {  // a named property (a GUID and a UTF-16 name), as Outlook adds to attachments
            put32(list, 0x80050003);
            list += std::string(16, '\x11');
            put32(list, 1);
            const std::string name = utf16le(u"AttachmentHidden");
            put32(list, static_cast<std::uint32_t>(name.size()));
            list += name;
            pad4(list);
            put32(list, 0);
            ++count;
        }
        put32(list, (0x3705u << 16) | 0x0003);  // PR_ATTACH_METHOD
        put32(list, a.attached_item.empty() ? 1 : 5);
        ++count;
        if (!a.long_name.empty()) {
            put32(list, (0x3707u << 16) | 0x001F);
            put32(list, 1);
            const std::string name = utf16le(a.long_name);
            put32(list, static_cast<std::uint32_t>(name.size()));
            list += name;
            pad4(list);
            ++count;
        }
        if (!a.mime_tag.empty()) {
            put32(list, (0x370Eu << 16) | 0x001E);
            put32(list, 1);
            put32(list, static_cast<std::uint32_t>(a.mime_tag.size() + 1));
            list += a.mime_tag + '\0';
            pad4(list);
            ++count;
        }
        if (a.data_as_property) {
            put32(list, (0x3701u << 16) | 0x0102);  // PR_ATTACH_DATA_BIN
            put32(list, 1);
            put32(list, static_cast<std::uint32_t>(a.data.size()));
            list += a.data;
            pad4(list);
            ++count;
        }
        if (!a.attached_item.empty()) {
            put32(list, (0x3701u << 16) | 0x000D);  // PR_ATTACH_DATA_OBJ: an interface id, then the item's TNEF
            put32(list, 1);
            put32(list, static_cast<std::uint32_t>(16 + a.attached_item.size()));
            list += std::string(16, '\x22') + a.attached_item;
            pad4(list);
            ++count;
        }
        put32(props, count);
        s += tnef_record(2, 0x00069005, props + list);
    }
    return s;
}

TEST(MimeTnef, TheFilesInsideAWinmailDatAreClaimAttachmentsUnderTheirLongNames) {
    const std::string small_pdf = "%PDF-1.4\n" + std::string(9000, ' ') + "\n%%EOF\n";
    const std::string winmail = tnef_of({{"KLINIK~1.JPG", u"Klinik Dr Tan receipt 27 Dec.jpg", "image/jpeg", receipt(), ""},
                                         {"BILL.PDF", u"", "", small_pdf, ""},
                                         {"FORM~1.DOC", u"claim form.docx", "", std::string(3000, 'd'), ""},
                                         {"SCAN", u"\u6536\u636E", "", receipt(), ""}});
    auto runner = mime();
    auto out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", winmail}})));
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "Klinik Dr Tan receipt 27 Dec.jpg");
    EXPECT_EQ(out[0].doc->attributes.at("archive"), "winmail.dat");
    EXPECT_EQ(out[0].doc->parts.at(0).media_type, "image/jpeg");
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_EQ(out[1].doc->attributes.at("filename"), "BILL.PDF") << "no long name: the 8.3 title";
    EXPECT_EQ(out[1].doc->parts.at(0).media_type, "application/pdf");
    EXPECT_EQ(bytes_of(out[1]), small_pdf);
    EXPECT_EQ(out[2].doc->attributes.at("filename"), "\u6536\u636E") << "UTF-16 names are UTF-8";
    EXPECT_EQ(out[2].doc->parts.at(0).media_type, "image/jpeg") << "a name that says nothing: judged by the bytes";
    EXPECT_EQ(out[0].doc->attributes.at("attachment"), "1/3");
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'winmail.dat/claim form.docx': not an image or PDF"), std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");
}

TEST(MimeTnef, AForwardedOutlookItemAZipAndAFileKeptAsAPropertyAreOpened) {
    const std::string forwarded = tnef_of({{"RECEIPT.JPG", u"receipt.jpg", "image/jpeg", receipt(), ""}});
    const std::string winmail = tnef_of({{"", u"Fwd: my claim", "", "", forwarded},
                                         {"RECEIPTS.ZIP", u"receipts.zip", "application/x-zip-compressed", zip_of({{"IMG_2.jpg", receipt()}}), ""},
                                         {"", u"from exchange.jpg", "", receipt(), "", true}});
    auto runner = mime();
    auto out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", winmail}})));
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "receipt.jpg");
    EXPECT_EQ(out[0].doc->attributes.at("archive"), "winmail.dat/Fwd my claim") << "the item's name, sanitised";
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_EQ(out[1].doc->attributes.at("filename"), "IMG_2.jpg");
    EXPECT_EQ(out[1].doc->attributes.at("archive"), "winmail.dat/receipts.zip");
    EXPECT_EQ(bytes_of(out[1]), receipt());
    EXPECT_EQ(out[2].doc->attributes.at("filename"), "from exchange.jpg") << "the file in PR_ATTACH_DATA_BIN";
    EXPECT_EQ(bytes_of(out[2]), receipt());
}

// Damage in transit or a crafted stream: what was read before it is kept, and what could not
// be read is named (failing the email when nothing else is claimable).
TEST(MimeTnef, ADamagedWinmailDatKeepsWhatWasReadAndNamesWhatWasNot) {
    auto runner = mime();
    const std::string whole = tnef_of({{"R1.JPG", u"r1.jpg", "", receipt(), ""}, {"R2.JPG", u"r2.jpg", "", receipt(), ""}});
    // Cut inside the second receipt: the first goes on, the winmail.dat is named.
    auto out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", whole.substr(0, whole.size() - receipt().size() / 2)}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "r1.jpg");
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments")
                  .find("'winmail.dat': an Outlook TNEF attachment (winmail.dat) that cannot be read: the record at byte "),
              std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");

    // A byte changed inside a file: its checksum says so, and the email fails naming it.
    std::string changed = tnef_of({{"R1.JPG", u"r1.jpg", "", receipt(), ""}});
    changed[changed.find(receipt().substr(0, 64)) + 5000] ^= 0x40;
    std::string why = failure_of(runner, email_with({{"application/ms-tnef", "winmail.dat", changed}}));
    EXPECT_NE(why.find("no claim attachment could be read: 'winmail.dat/r1.jpg': damaged: its bytes do not match their checksum"),
              std::string::npos)
        << why;

    // Not TNEF at all behind the name, or zeros after the signature.
    why = failure_of(runner, email_with({{"application/ms-tnef", "winmail.dat", std::string(20000, 'x')}}));
    EXPECT_NE(why.find("'winmail.dat': an Outlook TNEF attachment (winmail.dat) that cannot be read: not a TNEF stream"), std::string::npos)
        << why;
    why = failure_of(runner, email_with({{"application/octet-stream", "noname", "\x78\x9f\x3e\x22" + std::string(100, '\0')}}));
    EXPECT_NE(why.find("'noname': an Outlook TNEF attachment (winmail.dat) that cannot be read: a record of level 0 at byte 6"), std::string::npos)
        << why;

    // A winmail.dat with no files (Outlook's rich text alone) hides nothing: skipped, not failed.
    out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", tnef_of({})}})));
    EXPECT_TRUE(out.empty());
    // Next to a receipt, a damaged one is named beside it.
    out = runner.process(eml(email_with({{"image/jpeg", "r.jpg", receipt()}, {"application/vnd.ms-tnef", "winmail.dat", changed}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'winmail.dat/r1.jpg': damaged"), std::string::npos);
}

// Found by a hostile probe: one damaged record lost a receipt without a word.
TEST(MimeTnef, OneDamagedRecordLosesNoFileSilently) {
    auto runner = mime();
    const std::string rendering = [] {
        std::string r;
        put16(r, 1);
        put32(r, 0xFFFFFFFF);
        put32(r, 0xFFFFFFFF);
        put32(r, 0);
        return r;
    }();
    const auto stream = [](const std::string& records) {
        std::string s;
        put32(s, 0x223E9F78);
        put16(s, 1);
        return s + tnef_record(1, 0x00089006, std::string("\0\0\1\0", 4)) + records;
    };
    const auto props_with_type = [](const std::string& mime_tag) {
        std::string p;
        put32(p, 1);
        put32(p, (0x370Eu << 16) | 0x001E);
        put32(p, 1);
        put32(p, static_cast<std::uint32_t>(mime_tag.size() + 1));
        p += mime_tag + '\0';
        pad4(p);
        return p;
    };
    // The property record fails its checksum ("applicatioo/pdf"): not trusted; the file is
    // judged by its title and bytes, and read.
    const std::string pdf = "%PDF-1.4\n" + std::string(9000, ' ') + "\n%%EOF\n";
    std::string damaged_props = tnef_record(2, 0x00069005, props_with_type("applicatioo/pdf"));
    damaged_props[damaged_props.size() - 1] ^= 0x01;
    auto out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat",
                                               stream(tnef_record(2, 0x00069002, rendering) + tnef_record(2, 0x00018010, std::string("R.PDF\0", 6)) +
                                                      tnef_record(2, 0x0006800F, pdf) + damaged_props)}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "R.PDF");
    EXPECT_EQ(bytes_of(out[0]), pdf);

    // No rendering record (its id damaged), and a second data record where the next
    // attachment's rendering record should be: both files are read.
    out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat",
                                          stream(tnef_record(2, 0x00069003, rendering) + tnef_record(2, 0x00018010, std::string("R.PDF\0", 6)) +
                                                 tnef_record(2, 0x0006800F, pdf) + tnef_record(2, 0x0006800F, receipt()))}})));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(bytes_of(out[0]), pdf);
    EXPECT_EQ(bytes_of(out[1]), receipt());

    // A ZIP whose bytes fail their checksum is named as damaged, not "empty".
    std::string zip_record = tnef_record(2, 0x0006800F, zip_of({{"IMG_1.jpg", receipt()}}));
    zip_record[zip_record.size() - 1] ^= 0x01;
    std::string why = failure_of(runner, email_with({{"application/ms-tnef", "winmail.dat",
                                                      stream(tnef_record(2, 0x00069002, rendering) +
                                                             tnef_record(2, 0x00018010, std::string("R.ZIP\0", 6)) + zip_record)}}));
    EXPECT_NE(why.find("'winmail.dat/R.ZIP': damaged: its bytes do not match their checksum"), std::string::npos) << why;

    // Cut before a file's data: said so.
    why = failure_of(runner, email_with({{"application/ms-tnef", "winmail.dat",
                                          stream(tnef_record(2, 0x00069002, rendering) + tnef_record(2, 0x00018010, std::string("R.JPG\0", 6)) +
                                                 tnef_record(2, 0x0006800F, receipt()).substr(0, 2000))}}));
    EXPECT_NE(why.find("'winmail.dat/R.JPG': cut short before its data: the record at byte "), std::string::npos) << why;

    // A few zeros a mail program added after the last record are no damage; a zeroed tail
    // long enough to have held an attachment is (found by a re-probe).
    const std::string one = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", one + std::string(16, '\0') + "\r\n"}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.count("skipped_attachments"), 0u);
    out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", one + std::string(200, '\0')}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'winmail.dat': an Outlook TNEF attachment (winmail.dat) that cannot be read"),
              std::string::npos);

    // A record other than a file's that fails its checksum (its length may be what changed,
    // swallowing attachments): the reading goes on, and the winmail.dat is named as damaged.
    std::string changed_subject = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    changed_subject[changed_subject.find("Claim for December")] = 'c';
    out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", changed_subject}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("does not match its checksum: damaged, and attachments may be missing"),
              std::string::npos)
        << out[0].doc->attributes.at("skipped_attachments");

    // A property record whose length was changed swallows the next attachment: named.
    {
        std::string two = tnef_of({{"R.JPG", u"receipt.jpg", "", receipt(), ""}, {"I.PDF", u"invoice.pdf", "", pdf, ""}});
        const std::size_t props = two.find(std::string("\x02\x05\x90\x06\x00", 5));
        ASSERT_NE(props, std::string::npos);
        const std::size_t length = static_cast<unsigned char>(two[props + 5]) | static_cast<unsigned char>(two[props + 6]) << 8;
        ASSERT_LT(props + 9 + length + 2, two.size()) << "the invoice's records follow";
        const std::size_t swallowing = two.size() - props - 9 - 2;  // its data now run to the stream's end
        two[props + 5] = static_cast<char>(swallowing & 0xFF);
        two[props + 6] = static_cast<char>((swallowing >> 8) & 0xFF);
        two[props + 7] = static_cast<char>((swallowing >> 16) & 0xFF);
        out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", two}})));
        ASSERT_GE(out.size(), 1u);
        EXPECT_NE(out[0].doc->attributes.at("skipped_attachments").find("'winmail.dat': an Outlook TNEF attachment (winmail.dat) that cannot be read"),
                  std::string::npos)
            << out[0].doc->attributes.at("skipped_attachments");
    }

    // An empty data record beside the file kept as a property: the property is the file.
    std::string both = stream(tnef_record(2, 0x00069002, rendering) + tnef_record(2, 0x0006800F, ""));
    both += tnef_record(2, 0x00069005, one_binary_property(0x3701, pdf));  // PR_ATTACH_DATA_BIN
    out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", both}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), pdf);
}

// Found by a review: a file whose bytes are a property (Exchange), read whole, was dropped as
// "cut short" when the next record was damaged; and with a damaged rendering record, the next
// attachment's title renamed the one before.
TEST(MimeTnef, DamageAfterAWholeFileLeavesItAndItsNameAlone) {
    auto runner = mime();
    std::string winmail = tnef_of({{"", u"from exchange.jpg", "", receipt(), "", true}, {"TWO.PDF", u"", "", "%PDF-1.4\n", ""}});
    const std::size_t second = winmail.find(std::string("\x02\x02\x90\x06\x00", 5), winmail.find(receipt().substr(0, 64)));
    ASSERT_NE(second, std::string::npos);
    std::string cut = winmail;
    cut[second] = '\x07';  // the second attachment's level byte
    auto out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", cut}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "from exchange.jpg");
    EXPECT_EQ(bytes_of(out[0]), receipt());

    std::string titled = tnef_of({{"ONE.JPG", u"", "", receipt(), ""}, {"TWO.PDF", u"", "", "%PDF-1.4\n" + std::string(9000, ' '), ""}});
    const std::size_t rendering = titled.find(std::string("\x02\x02\x90\x06\x00", 5), titled.find("ONE.JPG"));
    ASSERT_NE(rendering, std::string::npos);
    titled[rendering + 1] = '\x03';  // its id: no longer a rendering record
    out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", titled}})));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "ONE.JPG");
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_EQ(out[1].doc->attributes.at("filename"), "TWO.PDF");
    EXPECT_EQ(out[1].doc->parts.at(0).media_type, "application/pdf");
}

TEST(MimeTnef, CodePagesOleObjectsAndItemNamesAsOutlookWritesThem) {
    auto runner = mime();
    // An 8.3 title in the stream's code page (attOemCodepage 1252): "Résumé.jpg".
    std::string winmail = tnef_of({});
    std::string title_only;
    {
        std::string rendering;
        put16(rendering, 1);
        put32(rendering, 0xFFFFFFFF);
        put32(rendering, 0xFFFFFFFF);
        put32(rendering, 0);
        title_only = tnef_record(2, 0x00069002, rendering) + tnef_record(2, 0x00018010, std::string("R\xE9sum\xE9.jpg\0", 11)) +
                     tnef_record(2, 0x0006800F, receipt());
    }
    auto out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", winmail + title_only}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "R\u00e9sum\u00e9.jpg");

    // A picture pasted into a rich-text email is an OLE object (PR_ATTACH_METHOD 6): a person must look.
    std::string ole = tnef_of({{"PICTUR~1", u"Picture (Device Independent Bitmap)", "", "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + std::string(20000, '\0'), ""}});
    const std::size_t method = ole.find(std::string("\x03\x00\x05\x37\x01\x00\x00\x00", 8));
    ASSERT_NE(method, std::string::npos);
    ole[method + 4] = '\x06';
    // (the property record's checksum follows the change)
    const std::size_t props_record = ole.rfind(std::string("\x05\x90\x06\x00", 4));
    const std::size_t props_length = static_cast<unsigned char>(ole[props_record + 4]) | static_cast<unsigned char>(ole[props_record + 5]) << 8;
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < props_length; ++i) sum += static_cast<unsigned char>(ole[props_record + 8 + i]);
    ole[ole.size() - 2] = static_cast<char>(sum & 0xFF);
    ole[ole.size() - 1] = static_cast<char>((sum >> 8) & 0xFF);
    const std::string why = failure_of(runner, email_with({{"application/ms-tnef", "winmail.dat", ole}}));
    EXPECT_NE(why.find("'winmail.dat/Picture (Device Independent Bitmap)': an OLE object pasted into an Outlook rich-text email"), std::string::npos)
        << why;

    // An attached item's name with a slash is one name.
    const std::string forwarded = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", tnef_of({{"", u"Fwd: 1/2 receipts", "", "", forwarded}})}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("archive"), "winmail.dat/Fwd 1_2 receipts");
}

// An email that is one winmail.dat and nothing else, as Exchange sends one.
std::string tnef_alone(const std::string& winmail) {
    return "From: a@example.my\r\nSubject: Claim\r\nMIME-Version: 1.0\r\n"
           "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
           test::base64_mime(winmail);
}

// A gzipped receipt in a winmail.dat is named from its own name, not the winmail.dat's path.
TEST(MimeTnef, AGzippedReceiptInsideIsNamedFromItsOwnName) {
    auto runner = mime();
    auto out = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat",
                                               tnef_of({{"RECEIPT.GZ", u"receipt.jpg.gz", "", tar_of({{"x", receipt()}}, "gzip", "raw"), ""}})}})));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_EQ(out[0].doc->attributes.at("filename"), "receipt.jpg");
    EXPECT_EQ(out[0].doc->attributes.at("archive"), "winmail.dat/receipt.jpg.gz");
}

// Exchange can send a whole email as TNEF: its body is then only in the winmail.dat.
TEST(MimeTnef, AnEmailSentAsTnefAloneKeepsItsBody) {
    std::string winmail = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    winmail.insert(winmail.find(tnef_record(1, 0x00018004, std::string("Claim for December\0", 19))),
                   tnef_record(1, 0x0002800C, std::string("Member ID: MEM123456789\r\nPolicy No: POL987654321\0", 50)));
    const std::string email = tnef_alone(winmail);
    auto runner = mime();
    auto out = runner.process(eml(email));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_NE(out[0].doc->attributes.at("body_text").find("Member ID: MEM123456789"), std::string::npos) << out[0].doc->attributes.at("body_text");
    // Beside a text part, the text part is the body.
    auto beside = runner.process(eml(email_with({{"application/ms-tnef", "winmail.dat", winmail}}, "Policy No: POL111")));
    ASSERT_EQ(beside.size(), 1u);
    EXPECT_EQ(beside[0].doc->attributes.at("body_text").find("MEM123456789"), std::string::npos);
}

TEST(MimeTnef, ABodyCutToItsLimitStaysValidUtf8) {
    const std::string email = email_with({}, "\u6536\u636E\u6536\u636E");  // 12 bytes of UTF-8
    mail::EmailLimits limits;
    limits.max_body_chars = 10;
    const mail::ParsedEmail parsed = mail::parse_email(reinterpret_cast<const std::uint8_t*>(email.data()), email.size(), limits);
    EXPECT_EQ(parsed.body_text, "\u6536\u636E\u6536") << "cut before the character the limit falls in";
    EXPECT_EQ(mail::valid_utf8(parsed.body_text), parsed.body_text);
}

TEST(MimeTnef, ReadingIsBoundedByTheEmailsLimits) {
    // More files than max_parts leaves room for: the winmail.dat is refused alone.
    std::vector<TnefAttachment> many(30, TnefAttachment{"R.JPG", u"r.jpg", "", receipt().substr(0, 100), ""});
    auto runner = mime(R"({"max_parts": 20})");
    std::string why = failure_of(runner, email_with({{"application/ms-tnef", "winmail.dat", tnef_of(many)}}));
    EXPECT_NE(why.find("'winmail.dat': an Outlook TNEF attachment (winmail.dat) holding more files than max_parts (20)"), std::string::npos)
        << why;

    // Attached items nested deeper than 4 are not opened, and say so.
    std::string item = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    for (int i = 0; i < 6; ++i) item = tnef_of({{"", u"Fwd", "", "", item}});
    why = failure_of(runner, email_with({{"application/ms-tnef", "winmail.dat", item}}));
    EXPECT_NE(why.find("an attached Outlook item that cannot be read: "), std::string::npos) << why;
    EXPECT_NE(why.find("attached items nested more than 4 deep: not opened"), std::string::npos) << why;

    // A record that claims 4 GB, and a property list that claims 4 billion properties.
    std::string huge = tnef_of({});
    huge += std::string("\x02\x02\x90\x06\x00\xFF\xFF\xFF\xFF", 9) + std::string(100, 'z');
    const mail::TnefListing listing = mail::read_tnef(Bytes(huge.begin(), huge.end()), mail::TnefLimits{});
    EXPECT_TRUE(listing.files.empty());
    EXPECT_NE(listing.error.find("says it holds 4294967295 bytes and a 2-byte checksum, more than the 100 left"), std::string::npos) << listing.error;
    std::string props_claim = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    const std::size_t props_at = props_claim.rfind(std::string("\x05\x90\x06\x00", 4));
    ASSERT_NE(props_at, std::string::npos);
    std::string crafted = props_claim.substr(0, props_at + 8);  // the record's id and length kept
    crafted += std::string("\xFF\xFF\xFF\xFF", 4) + props_claim.substr(props_at + 12);
    std::uint32_t sum = 0;
    const std::size_t length = static_cast<unsigned char>(props_claim[props_at + 4]) | static_cast<unsigned char>(props_claim[props_at + 5]) << 8;
    for (std::size_t i = 0; i < length; ++i) sum += static_cast<unsigned char>(crafted[props_at + 8 + i]);
    crafted[crafted.size() - 2] = static_cast<char>(sum & 0xFF);
    crafted[crafted.size() - 1] = static_cast<char>((sum >> 8) & 0xFF);
    const mail::TnefListing read = mail::read_tnef(Bytes(crafted.begin(), crafted.end()), mail::TnefLimits{});
    EXPECT_TRUE(read.error.empty()) << read.error;
    ASSERT_EQ(read.files.size(), 1u);
    EXPECT_EQ(read.files[0].name, "r.jpg") << "the properties read before the bytes ran out are kept";
    EXPECT_EQ(read.files[0].bytes.size(), receipt().size());
}

// ---------------------------------------------------------------------------------------
// Outlook's rich-text body (compressed RTF, MS-OXRTFCP)

// Compressed RTF as a writer that never refers back would write it: every byte a literal,
// then the end marker (a reference to where the next byte would go).
std::string lzfu_of(const std::string& rtf, std::uint32_t crc_change = 0) {
    std::string contents;
    std::size_t write = 207;  // the primed dictionary's length
    const auto end_marker = [&] {
        contents += static_cast<char>(write >> 4);
        contents += static_cast<char>((write & 0xF) << 4);
    };
    for (std::size_t i = 0; i <= rtf.size(); i += 8) {
        const std::size_t n = std::min<std::size_t>(8, rtf.size() - i);
        contents += static_cast<char>(n < 8 ? 1u << n : 0u);
        contents += rtf.substr(i, n);
        write = (write + n) % 4096;
        if (n < 8) end_marker();
    }
    std::string s;
    put32(s, static_cast<std::uint32_t>(contents.size() + 12));
    put32(s, static_cast<std::uint32_t>(rtf.size()));
    put32(s, 0x75465A4C);
    // MS-OXRTFCP's CRC: CRC-32 without zlib's inversions.
    put32(s, ~static_cast<std::uint32_t>(crc32(0xFFFFFFFFul, reinterpret_cast<const Bytef*>(contents.data()), contents.size())) ^ crc_change);
    return s + contents;
}

// A winmail.dat whose only body is PR_RTF_COMPRESSED among the message's properties, as
// Outlook sends a rich-text email through Exchange.
std::string tnef_with_rich_text(const std::string& compressed) {
    std::string winmail = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    winmail.insert(winmail.find(tnef_record(1, 0x00018004, std::string("Claim for December\0", 19))),
                   tnef_record(1, 0x00069003, one_binary_property(0x1009, compressed)));  // PR_RTF_COMPRESSED
    return winmail;
}

TEST(MimeRtf, TheSpecificationsCompressedExampleReadsBack) {
    // MS-OXRTFCP's own example: references into the primed dictionary, literals, the end marker.
    const unsigned char example[] = {0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5, 0xc7,
                                     0xa7, 0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42, 0x32, 0x0a,
                                     0xf3, 0x20, 0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d,
                                     0x0a, 0x80, 0x0f, 0xa0};
    const std::string compressed(reinterpret_cast<const char*>(example), sizeof example);
    mail::DecompressedRtf read = mail::decompress_rtf(compressed, 1 << 20);
    EXPECT_EQ(read.problem, "");
    EXPECT_EQ(read.rtf, "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n");
    EXPECT_EQ(mail::rtf_to_text(read.rtf), "hello world");

    // One changed byte fails the CRC; a cut stream, a wrong size and an unknown type are said.
    std::string changed = compressed;
    changed[30] ^= 0x01;
    read = mail::decompress_rtf(changed, 1 << 20);
    EXPECT_EQ(read.rtf, "");
    EXPECT_EQ(read.problem, "damaged: its CRC does not match its bytes");
    read = mail::decompress_rtf(compressed.substr(0, 40), 1 << 20);
    EXPECT_NE(read.problem.find("cut short or damaged"), std::string::npos) << read.problem;
    std::string cut = lzfu_of("{\\rtf1 hello}");
    cut.resize(cut.size() - 2);  // the end marker lost, the sizes and CRC made to match
    cut[0] = static_cast<char>(cut.size() - 4);
    const std::string contents = cut.substr(16);
    const std::uint32_t crc = ~static_cast<std::uint32_t>(crc32(0xFFFFFFFFul, reinterpret_cast<const Bytef*>(contents.data()), contents.size()));
    for (int i = 0; i < 4; ++i) cut[12 + i] = static_cast<char>(crc >> (8 * i));
    read = mail::decompress_rtf(cut, 1 << 20);
    EXPECT_EQ(read.problem, "cut short: its compressed data end before their end marker");
    std::string unknown = compressed;
    unknown[8] = 'X';
    EXPECT_NE(mail::decompress_rtf(unknown, 1 << 20).problem.find("neither LZFu nor MELA"), std::string::npos);
    EXPECT_NE(mail::decompress_rtf("short", 1 << 20).problem.find("less than its 16-byte header"), std::string::npos);

    // Uncompressed ("MELA") RTF is taken as it is; RTF over the limit is read up to it.
    std::string mela;
    put32(mela, 12 + 10);
    put32(mela, 10);
    put32(mela, 0x414C454D);
    put32(mela, 0);
    mela += "{\\rtf1 ok}";
    EXPECT_EQ(mail::decompress_rtf(mela, 1 << 20).rtf, "{\\rtf1 ok}");
    read = mail::decompress_rtf(lzfu_of("{\\rtf1 " + std::string(5000, 'a') + "}"), 1000);
    EXPECT_EQ(read.rtf.size(), 1000u);
    EXPECT_NE(read.problem.find("over 1000 bytes of RTF"), std::string::npos) << read.problem;
}

TEST(MimeRtf, TheTextOfAnOutlookRichTextBody) {
    const std::string rtf =
        "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0\\fswiss\\fcharset0 Arial;}{\\f1\\fnil\\fcharset134 SimSun;}}"
        "{\\colortbl ;\\red255\\green0\\blue0;}{\\*\\generator Riched20 10.0.19041}\\viewkind4\\uc1\n"
        "\\pard\\f0\\fs20 Member ID: MEM123456789\\par\n"
        "Policy No:\\tab POL987654321\\par\n"
        "Caf\\'e9 \\u8364?5.00 \\u-10179?\\u-8704?\\par\n"
        "{\\f1 \\'ca\\'d5\\'be\\'dd}\\par\n"
        "{\\pict\\wmetafile8\\picw100 0a0b0c0d}{\\field{\\*\\fldinst HYPERLINK \"https://x.example\"}{\\fldrslt claims portal}}\\par\n"
        "\\{braces\\} and a back\\\\slash\\bin3 {{{ end\\par\n"
        "}";
    const std::string text = mail::rtf_to_text(rtf);
    EXPECT_EQ(text, "Member ID: MEM123456789\nPolicy No:\tPOL987654321\nCaf\u00e9 \u20ac5.00 \U0001F600\n\u6536\u636e\n"
                    "claims portal\n{braces} and a back\\slash end")
        << text;

    // HTML Outlook wrapped in RTF (\fromhtml1): the HTML is rebuilt, RTF-only text dropped.
    const std::string wrapped =
        "{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 \\deff0{\\fonttbl{\\f0\\fswiss Arial;}}\n"
        "{\\*\\htmltag19 <html>}{\\*\\htmltag34 <head>}{\\*\\htmltag177 <style>p \\{color:red\\}</style>}{\\*\\htmltag41 </head>}\n"
        "{\\*\\htmltag2 \\par }{\\*\\htmltag50 <body>}\\htmlrtf \\viewkind4\\uc1\\pard\\htmlrtf0 \n"
        "{\\*\\htmltag64 <p>}\\htmlrtf {\\htmlrtf0 Member&nbsp;ID: MEM555\\htmlrtf\\par\\htmlrtf0}\\htmlrtf0 {\\*\\htmltag72 </p>}\n"
        "{\\*\\htmltag64 <p>}Policy &amp; No: POL777{\\*\\htmltag72 </p>}\\htmlrtf RTF ONLY\\htmlrtf0 \n"
        "{\\*\\htmltag58 </body>}{\\*\\htmltag27 </html>}}";
    const std::string html_text = mail::rtf_to_text(wrapped);
    EXPECT_EQ(html_text, "Member ID: MEM555\n\nPolicy & No: POL777") << html_text;

    // Hostile RTF: deep nesting, a \bin past the end, a cut escape. Bounded, and no throw.
    std::string deep = "{\\rtf1 " + std::string(200000, '{') + "hidden" + std::string(200000, '}') + "shown}";
    EXPECT_EQ(mail::rtf_to_text(deep), "shown") << "groups nested past a few hundred levels are read as hidden";
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1 a\\bin999999999 bcd"), "a");
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1 a\\'"), "a");
}

// Found by a hostile probe: text that was decoded wrongly or lost.
TEST(MimeRtf, CodePagesFontsAndHiddenTextAsWordAndOutlookWriteThem) {
    // Code-page bytes that also happen to be valid UTF-8 are still code-page bytes.
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1\\ansi\\ansicpg1252 JOS\\'c9\\'92S}"), "JOS\u00c9\u2019S");
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1\\ansi\\ansicpg936{\\fonttbl{\\f0\\fnil\\fcharset134 SimSun;}}\\f0 {\\'ce\\'aa}}"), "\u4e3a");
    // \fcharset0 is Western (1252) in a Chinese document; \deff names the font of text before any \f.
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1\\ansi\\ansicpg936\\deff0{\\fonttbl{\\f0\\fnil\\fcharset134 SimSun;}{\\f1\\fswiss\\fcharset0 Arial;}}"
                                "\\'d6\\'d0 \\f1 Jos\\'e9 Garc\\'eda\\plain  \\'d6\\'d0}"),
              "\u4e2d Jos\u00e9 Garc\u00eda \u4e2d");
    // One byte the code page does not explain costs that byte, not its neighbours.
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1\\ansi\\ansicpg1252 M\\'fcller caf\\'e9 \\'81 na\\'efve}"), "M\u00fcller caf\u00e9 _ na\u00efve");
    // Nested tables' cells, hidden text, em spaces, a lone surrogate.
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1 \\intbl\\itap2 Member ID\\nestcell MEM123456789\\nestcell{\\*\\nesttableprops x}\\nestrow"
                                "{\\nonesttables Member ID MEM123456789}}"),
              "Member ID\tMEM123456789");
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1 Member ID: {\\v SECRET}MEM1 \\v hidden\\v0 ID:\\emspace MEM2}"), "Member ID: MEM1 ID: MEM2");
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1 \\u-10179?\\u65?}"), "\ufffdA");
    // What MELA or LZFu's uncompressed size says is not trusted to cut the RTF (the CRC does not cover it).
    std::string lying = lzfu_of("{\\rtf1 Member ID: MEM1}");
    lying[4] = lying[5] = lying[6] = lying[7] = 0;
    EXPECT_EQ(mail::decompress_rtf(lying, 1 << 20).rtf, "{\\rtf1 Member ID: MEM1}");
    std::string mela;
    put32(mela, 12 + 10);
    put32(mela, 0);  // RAWSIZE 0
    put32(mela, 0x414C454D);
    put32(mela, 0);
    mela += "{\\rtf1 ok}";
    EXPECT_EQ(mail::decompress_rtf(mela, 1 << 20).rtf, "{\\rtf1 ok}");
    // glibc holds back a character in 1255 and 1258 (it may combine with the next): not lost.
    EXPECT_EQ(mail::decode_code_page("abc", 1258, false), "abc");
    EXPECT_EQ(mail::decode_code_page("\xF9\xEC\xE5\xED", 1255, false), "\u05e9\u05dc\u05d5\u05dd");
    EXPECT_EQ(mail::rtf_to_text("{\\rtf1\\ansi\\ansicpg1258 ho\\'e1 \\'f0\\'ef\\'ee\\par xyz}"), "ho\u00e1 \u0111\u00ef\u00ee\nxyz");
}

TEST(MimeRtf, AWinmailDatWithOnlyARichTextBodyKeepsItsText) {
    const std::string rtf = "{\\rtf1\\ansi\\ansicpg1252{\\fonttbl{\\f0 Calibri;}}\\pard Member ID: MEM123456789\\par Policy No: POL987654321\\par}";
    const std::string winmail = tnef_with_rich_text(lzfu_of(rtf));
    const std::string email = tnef_alone(winmail);
    auto runner = mime();
    auto out = runner.process(eml(email));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), receipt());
    EXPECT_EQ(out[0].doc->attributes.at("body_text"), "Member ID: MEM123456789\nPolicy No: POL987654321");

    // A damaged one: the receipt still goes on, and the email says its body was not read.
    const std::string damaged = tnef_alone(tnef_with_rich_text(lzfu_of(rtf, 0x100)));
    const mail::ParsedEmail parsed =
        mail::parse_email(reinterpret_cast<const std::uint8_t*>(damaged.data()), damaged.size(), mail::EmailLimits{});
    EXPECT_EQ(parsed.body_text, "");
    ASSERT_EQ(parsed.attachments.size(), 1u);
    EXPECT_TRUE(parsed.attachments[0].skipped.empty()) << parsed.attachments[0].skipped;
    const std::string said =
        "'winmail.dat': its rich-text body (PR_RTF_COMPRESSED) cannot be read whole: damaged: its CRC does not match its bytes; the email's "
        "text was not read";
    EXPECT_EQ(parsed.unreadable_elsewhere, std::vector<std::string>{said});
    auto damaged_out = runner.process(eml(damaged));
    ASSERT_EQ(damaged_out.size(), 1u);
    EXPECT_EQ(damaged_out[0].doc->attributes.at("skipped_attachments"), said) << "a reviewer sees why the member id is missing";

    // A damaged body hides no attachment: an email with nothing else is skipped, not failed.
    std::string no_files = tnef_of({});
    no_files.insert(no_files.find(tnef_record(1, 0x00018004, std::string("Claim for December\0", 19))),
                    tnef_record(1, 0x00069003, one_binary_property(0x1009, lzfu_of(rtf, 0x100))));
    EXPECT_EQ(failure_of(runner, tnef_alone(no_files)), "");
    EXPECT_TRUE(runner.process(eml(tnef_alone(no_files))).empty());

    // Beside a text part, the text part is the body and nothing is said about the RTF.
    const std::string beside = email_with({{"application/ms-tnef", "winmail.dat", tnef_with_rich_text(lzfu_of(rtf, 0x100))}}, "Policy No: POL111");
    const mail::ParsedEmail with_text = mail::parse_email(reinterpret_cast<const std::uint8_t*>(beside.data()), beside.size(), mail::EmailLimits{});
    EXPECT_EQ(with_text.body_text, "Policy No: POL111");
    for (const std::string& problem : with_text.problems) EXPECT_EQ(problem.find("rich-text"), std::string::npos) << problem;
}

TEST(MimeRtf, AWinmailDatsOtherBodiesAndWhatHidesThem) {
    const auto body_of = [](const std::string& winmail) {
        const std::string email = tnef_alone(winmail);
        return mail::parse_email(reinterpret_cast<const std::uint8_t*>(email.data()), email.size(), mail::EmailLimits{});
    };
    const std::string subject = tnef_record(1, 0x00018004, std::string("Claim for December\0", 19));
    const std::string rtf = lzfu_of("{\\rtf1\\ansi Member ID: MEM123456789}");
    // A PR_BODY of only a line break beside the rich text: the rich text is the body.
    std::string winmail = tnef_with_rich_text(rtf);
    winmail.insert(winmail.find(subject), tnef_record(1, 0x0002800C, std::string("\r\n\0", 3)));
    EXPECT_EQ(body_of(winmail).body_text, "Member ID: MEM123456789");
    // PR_HTML in its own code page (PR_INTERNET_CPID 1252), ending in a NUL.
    std::string html_props;
    put32(html_props, 2);
    put32(html_props, (0x3FDEu << 16) | 0x0003);
    put32(html_props, 1252);
    static const char kHtml[] = "<p>Jos\xC9\x92S</p><p>Member ID: MEM1</p>";
    const std::string html(kHtml, sizeof kHtml);  // with its NUL, as Outlook writes it
    put32(html_props, (0x1013u << 16) | 0x0102);
    put32(html_props, 1);
    put32(html_props, static_cast<std::uint32_t>(html.size()));
    html_props += html;
    pad4(html_props);
    winmail = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    winmail.insert(winmail.find(subject), tnef_record(1, 0x00069003, html_props));
    EXPECT_EQ(body_of(winmail).body_text, "Jos\u00c9\u2019S\n\nMember ID: MEM1");
    // A property of a type docpipe cannot size before the body: said, not silently empty.
    std::string unknown_props;
    put32(unknown_props, 2);
    put32(unknown_props, (0x6000u << 16) | 0x00FE);  // no MAPI type
    put32(unknown_props, 0);
    unknown_props += one_binary_property(0x1009, rtf).substr(4);
    winmail = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    winmail.insert(winmail.find(subject), tnef_record(1, 0x00069003, unknown_props));
    mail::ParsedEmail parsed = body_of(winmail);
    EXPECT_EQ(parsed.body_text, "");
    ASSERT_EQ(parsed.unreadable_elsewhere.size(), 1u);
    EXPECT_NE(parsed.unreadable_elsewhere[0].find("hold one of a type docpipe does not know"), std::string::npos) << parsed.unreadable_elsewhere[0];
    // PT_SVREID (0x00FB) is sized like a binary value, and read past.
    std::string svreid_props;
    put32(svreid_props, 2);
    put32(svreid_props, (0x6000u << 16) | 0x00FB);
    put32(svreid_props, 1);
    put32(svreid_props, 5);
    svreid_props += std::string("\x01\x02\x03\x04\x05\0\0\0", 8);
    svreid_props += one_binary_property(0x1009, rtf).substr(4);
    winmail = tnef_of({{"R.JPG", u"r.jpg", "", receipt(), ""}});
    winmail.insert(winmail.find(subject), tnef_record(1, 0x00069003, svreid_props));
    EXPECT_EQ(body_of(winmail).body_text, "Member ID: MEM123456789");
    // A damaged record of the message's properties: its body is said to be lost.
    winmail = tnef_with_rich_text(rtf);
    const std::size_t at = winmail.find(std::string("\x03\x90\x06\x00", 4));
    ASSERT_NE(at, std::string::npos);
    winmail[at + 20] ^= 0x01;
    parsed = body_of(winmail);
    EXPECT_EQ(parsed.body_text, "");
    EXPECT_NE(std::find(parsed.unreadable_elsewhere.begin(), parsed.unreadable_elsewhere.end(),
                        "'winmail.dat': the record of the message's properties does not match its checksum: its text may be lost; the email's "
                        "text was not read"),
              parsed.unreadable_elsewhere.end())
        << ::testing::PrintToString(parsed.unreadable_elsewhere);
}

TEST(MimeRtf, AnEmailWhoseBodyIsTextRtfKeepsItsText) {
    const std::string email =
        "From: a@example.my\r\nSubject: Claim\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
        "--B\r\nContent-Type: text/rtf; charset=utf-8\r\n\r\n{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\pard Member ID: MEM42 \xC9\x92\\par}\r\n"
        "--B\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"r.jpg\"\r\n\r\n" +
        test::base64_mime(receipt()) + "--B--\r\n";
    auto runner = mime();
    auto out = runner.process(eml(email));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].doc->attributes.at("body_text"), "Member ID: MEM42 \u00c9\u2019") << "RTF's bytes are in its code page (1252), whatever the MIME charset says";
}

}  // namespace
