// The text of an Outlook rich-text body. Outlook keeps an email written in its "rich text"
// format as compressed RTF (the MAPI property PR_RTF_COMPRESSED, MS-OXRTFCP); an email that
// Exchange sends as a winmail.dat alone may carry its body only that way, and the member id
// and policy number a claim needs are in that body. An HTML email Outlook wrapped in RTF
// (\fromhtml1, MS-OXRTFEX) is unwrapped to its HTML first.
//
// These functions are pure (thread-safe) and never throw for damaged or hostile input: what
// cannot be read is said in `problem`. Written here rather than taken from a library: Debian
// has no RTF reader as a library (unrtf is a program), and libytnef's decompressor comes with
// the reasons tnef.hpp gives for not using it.
//
// Bounds: decompression stops at `max_bytes` of RTF; the text is at most a few times the
// RTF's size (one 8-bit byte may become three bytes of UTF-8).
// Groups nested deeper than a few hundred levels are read as text-free (no memory grows with
// the nesting).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace docpipe::mail {

struct DecompressedRtf {
    std::string rtf;      // the RTF as Outlook wrote it (8-bit; its code page is inside it)
    std::string problem;  // why it could not be read ("" = read whole)
};

// PR_RTF_COMPRESSED's bytes: a 16-byte header (sizes, "LZFu" or "MELA", CRC-32 of what
// follows), then the RTF, compressed against a dictionary primed with common RTF words. A
// CRC that does not match or a stream cut before its end marker is a problem, and no RTF is
// returned; RTF over `max_bytes` is returned up to that limit, with the problem said.
DecompressedRtf decompress_rtf(std::string_view compressed, std::size_t max_bytes);

// The readable text of an RTF document as UTF-8: paragraphs and line breaks kept, tables'
// cells separated, font tables, pictures, fields' codes and other hidden groups dropped,
// \'hh bytes decoded in the document's (or the font's) code page, \uN characters kept.
// HTML wrapped in RTF is rebuilt and read with html_to_text.
std::string rtf_to_text(std::string_view rtf);

// Bytes in a Windows code page (1252, 936, 932, ... as TNEF and RTF number them) as UTF-8;
// each byte the conversion cannot explain becomes '_', and the rest is converted. With
// `keep_utf8`, bytes that already are valid UTF-8 are kept as they are (a name a program
// wrote in UTF-8 whatever the stream's code page says). Shared with tnef.cpp.
std::string decode_code_page(std::string_view raw, unsigned code_page, bool keep_utf8);

// Appends one Unicode code point as UTF-8 (the caller keeps surrogates out). Shared with tnef.cpp.
void append_code_point(std::string& out, std::uint32_t cp);

}  // namespace docpipe::mail
