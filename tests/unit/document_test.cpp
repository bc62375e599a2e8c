#include <gtest/gtest.h>

#include "docpipe/document.hpp"
#include "docpipe/rfc822.hpp"

using namespace docpipe;

TEST(Document, ContentIdIsStableAndContentDerived) {
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    EXPECT_EQ(Document::content_id("abc"), "ba7816bf8f01cfea414140de");
    auto a = Document::from_bytes("a.jpg", "image/jpeg", Bytes{'a', 'b', 'c'});
    auto b = Document::from_bytes("renamed.jpg", "image/jpeg", Bytes{'a', 'b', 'c'});
    EXPECT_EQ(a.id, b.id) << "redelivery of the same bytes maps to the same id";
}

TEST(Document, ChildrenHaveDistinctIdsAndKnowTheirParent) {
    auto parent = Document::from_bytes("mail.eml", "message/rfc822", Bytes{'m'});
    parent.attributes["subject"] = "claim";
    auto c0 = parent.make_child("0");
    auto c1 = parent.make_child("1");
    EXPECT_NE(c0.id, c1.id);
    EXPECT_EQ(c0.parent_id, parent.id);
    EXPECT_EQ(c0.attributes.at("subject"), "claim");
    EXPECT_EQ(parent.make_child("0").id, c0.id) << "deterministic";
}

TEST(Document, CopiesShareImmutableBytes) {
    auto a = Document::from_bytes("x", "text/plain", Bytes(1000, 'x'));
    Document b = a;
    EXPECT_EQ(a.parts[0].bytes.get(), b.parts[0].bytes.get());
}

TEST(Document, JsonRoundTripKeepsContentAndFields) {
    auto d = Document::from_bytes("r.png", "image/png", Bytes{0, 1, 2, 250, 255});
    d.attributes["sender"] = "a@b.c";
    d.fields["total_amount"] = {{"value", 479.05}, {"confidence", 0.97}};
    d.trace.push_back({"ocr", "processed", 12.5, ""});
    auto j = d.to_json(true);
    EXPECT_EQ(j["parts"][0]["size"], 5);
    auto back = Document::from_json(j);
    EXPECT_EQ(back.id, d.id);
    EXPECT_EQ(*back.parts[0].bytes, *d.parts[0].bytes);
    EXPECT_EQ(back.fields, d.fields);
    EXPECT_EQ(back.attributes, d.attributes);
    EXPECT_EQ(back.trace[0].node, "ocr");
    EXPECT_FALSE(d.to_json(false)["parts"][0].contains("base64"));
    EXPECT_THROW(Document::from_json(nlohmann::json::object()), std::invalid_argument);
}

TEST(Document, MediaTypes) {
    EXPECT_EQ(media_type_for("RECEIPT.JPG"), "image/jpeg");
    EXPECT_EQ(media_type_for("a.pdf"), "application/pdf");
    EXPECT_EQ(media_type_for("claim.eml"), "message/rfc822");
    EXPECT_EQ(media_type_for("noext"), "application/octet-stream");
}

// docpipe::json_text: what the runtime, the stores and the plugins write. A Latin-1 file name
// made nlohmann's plain dump() throw (a lost extract run, a drop-folder file retried as if the
// disk failed); valid UTF-8 must come out byte for byte, since ids and keys hash the text.
TEST(Document, JsonTextWritesABadByteAsReplacementAndKeepsValidUtf8) {
    const nlohmann::json latin1 = {{"name", std::string("re\xe7u.jpg")}};
    EXPECT_THROW((void)latin1.dump(), nlohmann::json::type_error);
    EXPECT_EQ(docpipe::json_text(latin1), "{\"name\":\"re\xef\xbf\xbdu.jpg\"}");
    const nlohmann::json utf8 = {{"name", "re\xc3\xa7u \xe6\x94\xb6\xe6\x8d\xae.jpg"}, {"n", 1}};
    EXPECT_EQ(docpipe::json_text(utf8), utf8.dump());
    EXPECT_EQ(docpipe::json_text(utf8, 2), utf8.dump(2));
}

// Sources read the Message-ID before transform.mime parses the email, so that the job of an
// email that cannot be parsed still has it.
TEST(Rfc822, TheFirstHeaderOfANameUnfoldedAndTheMessageIdWithoutBrackets) {
    const std::string raw =
        "Received: from a\r\n\tby b\r\nmessage-id:\r\n  <claim-7@clinic.example>  \r\nSubject: Claim\r\n"
        "Message-ID: <second@x>\r\n\r\nMessage-ID: <in-the-body@x>\r\n";
    EXPECT_EQ(docpipe::rfc822_message_id(raw), "claim-7@clinic.example") << "folded, any case, the first one";
    EXPECT_EQ(docpipe::rfc822_header(raw, "subject"), "Claim");
    EXPECT_EQ(docpipe::rfc822_header(raw, "Received"), "from a by b");
    EXPECT_EQ(docpipe::rfc822_header("Subject: x\n\nMessage-ID: <body@x>\n", "message-id"), "") << "the body is not read";
    EXPECT_EQ(docpipe::rfc822_message_id("Message-ID: no-brackets@x\n\n"), "no-brackets@x");
    EXPECT_EQ(docpipe::rfc822_message_id(std::string(300 * 1024, 'x') + "\nMessage-ID: <late@x>\n"), "") << "past 256 KiB";
    EXPECT_EQ(docpipe::rfc822_message_id(""), "");
    // Odd headers read as GMime reads them (transform.mime's parser): a comment, spaces inside
    // the brackets or before the colon, two ids, a stray semicolon.
    EXPECT_EQ(docpipe::rfc822_message_id("Message-ID: <abc@x> (added by postmaster)\n\n"), "abc@x");
    EXPECT_EQ(docpipe::rfc822_message_id("Message-ID: (c) <cm@x>\n\n"), "cm@x");
    EXPECT_EQ(docpipe::rfc822_message_id("Message-ID: < abc@x >\n\n"), "abc@x");
    EXPECT_EQ(docpipe::rfc822_message_id("Message-ID : <x@y>\n\n"), "x@y");
    EXPECT_EQ(docpipe::rfc822_message_id("Message-ID: <a@x> <b@y>\n\n"), "a@x");
    EXPECT_EQ(docpipe::rfc822_message_id("Message-ID: <a@x>;\n\n"), "a@x");
    EXPECT_EQ(docpipe::rfc822_message_id("Message-ID: bare@x (relay)\n\n"), "bare@x");
    EXPECT_EQ(docpipe::rfc822_header("Message-IDX: <no@x>\n\n", "message-id"), "") << "another header's name";
}
