#include "wire_format.hpp"

#include <openssl/evp.h>

#include <map>

#include <fmt/core.h>

namespace docpipe::streams {

using nlohmann::json;

namespace {

constexpr char kMagic[4] = {'D', 'P', 'D', 'S'};
constexpr std::size_t kHeaderSize = 6;

json box_json(const Box& b) { return json::array({b.x, b.y, b.width, b.height}); }

Box box_of(const json& j, const std::string& where) {
    if (!j.is_array() || j.size() != 4) throw WireFormatError(fmt::format("{}: a box must be [x, y, width, height]", where));
    return Box{j[0].get<int>(), j[1].get<int>(), j[2].get<int>(), j[3].get<int>()};
}

// Collects blobs while encoding so each distinct buffer is stored (and counted) once.
class BlobCollector {
public:
    BlobCollector(std::size_t limit, Encoded& out) : limit_(limit), out_(out) {}

    // Puts `bytes` into `holder` inline, or as a blob reference when above the limit.
    void place(json& holder, const SharedBytes& bytes) {
        const std::size_t size = bytes ? bytes->size() : 0;
        holder["size"] = size;
        if (!bytes) return;  // "no buffer" travels as absent bytes, distinct from empty
        if (size <= limit_) {
            holder["bytes"] = json::binary(std::vector<std::uint8_t>(bytes->begin(), bytes->end()));
            return;
        }
        std::string sha = sha256_hex(bytes->data(), bytes->size());
        holder["blob"] = sha;
        if (seen_.emplace(sha, true).second) out_.blobs.push_back({BlobRef{sha, size}, bytes});
    }

private:
    std::size_t limit_;
    Encoded& out_;
    std::map<std::string, bool> seen_;
};

SharedBytes take_bytes(const json& holder, const BlobReader& read_blob, const std::string& where) {
    if (holder.contains("bytes")) {
        const auto& b = holder.at("bytes");
        if (!b.is_binary()) throw WireFormatError(fmt::format("{}: 'bytes' is not a byte string", where));
        return std::make_shared<const Bytes>(b.get_binary().begin(), b.get_binary().end());
    }
    if (holder.contains("blob")) {
        BlobRef ref{holder.at("blob").get<std::string>(), holder.at("size").get<std::size_t>()};
        SharedBytes bytes = read_blob ? read_blob(ref) : nullptr;
        if (!bytes)
            throw WireFormatError(fmt::format("{}: blob {} ({} bytes) is gone from the blob store (expired or deleted "
                                              "before this entry was read)", where, ref.sha256, ref.size));
        if (bytes->size() != ref.size || sha256_hex(bytes->data(), bytes->size()) != ref.sha256)
            throw WireFormatError(fmt::format("{}: blob {} does not match its reference (size {} vs {})", where,
                                              ref.sha256, bytes->size(), ref.size));
        return bytes;
    }
    return nullptr;
}

}  // namespace

UnsupportedWireVersion::UnsupportedWireVersion(std::uint16_t v)
    : WireFormatError(fmt::format("document format version {} is not known to this build (it reads version {} and "
                                  "older): the producer runs a newer docpipe; upgrade this worker",
                                  v, kWireVersion)),
      found(v) {}

std::string sha256_hex(const std::uint8_t* data, std::size_t size) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data, size, digest, &len, EVP_sha256(), nullptr) != 1) throw std::runtime_error("SHA-256 failed (OpenSSL)");
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0xF]);
    }
    return out;
}

Encoded encode(const Document& doc, const EncodeOptions& options) {
    Encoded out;
    BlobCollector blobs(options.inline_limit, out);

    json content;
    content["id"] = doc.id;
    content["parent_id"] = doc.parent_id;
    json parts = json::array();
    for (const auto& p : doc.parts) {
        json pj{{"name", p.name}, {"media_type", p.media_type}};
        blobs.place(pj, p.bytes);
        parts.push_back(std::move(pj));
    }
    content["parts"] = std::move(parts);
    json pages = json::array();
    for (const auto& pg : doc.pages) {
        json pj{{"index", pg.index}, {"text_layer", pg.text_layer}};
        json img{{"width", pg.image.width}, {"height", pg.image.height}, {"channels", pg.image.channels}, {"dpi", pg.image.dpi}};
        blobs.place(img, pg.image.pixels);
        pj["image"] = std::move(img);
        if (pg.ocr) {
            const auto& o = *pg.ocr;
            json lines = json::array(), words = json::array();
            for (const auto& l : o.lines) lines.push_back({{"text", l.text}, {"box", box_json(l.box)}, {"confidence", l.confidence}});
            for (const auto& w : o.words)
                words.push_back({{"text", w.text}, {"box", box_json(w.box)}, {"confidence", w.confidence}, {"line", w.line}});
            pj["ocr"] = {{"engine", o.engine}, {"text", o.text}, {"mean_confidence", o.mean_confidence},
                         {"lines", std::move(lines)}, {"words", std::move(words)}};
        }
        pages.push_back(std::move(pj));
    }
    content["pages"] = std::move(pages);
    content["fields"] = doc.fields;

    // The hash covers content only; blob references stand in for their bytes (they are
    // content hashes themselves), so this is cheap even for big pages.
    const std::vector<std::uint8_t> content_cbor = json::to_cbor(content);
    out.content_hash = sha256_hex(content_cbor.data(), content_cbor.size());

    json body = std::move(content);
    body["job_id"] = options.job_id;
    body["producer"] = options.producer;
    body["written_ms"] = options.written_ms;
    body["attributes"] = doc.attributes;
    json trace = json::array();
    for (const auto& t : doc.trace) trace.push_back({{"node", t.node}, {"event", t.event}, {"millis", t.millis}, {"detail", t.detail}});
    body["trace"] = std::move(trace);

    const std::vector<std::uint8_t> cbor = json::to_cbor(body);
    out.payload.reserve(kHeaderSize + cbor.size());
    out.payload.append(kMagic, sizeof kMagic);
    out.payload.push_back(static_cast<char>(kWireVersion >> 8));
    out.payload.push_back(static_cast<char>(kWireVersion & 0xFF));
    out.payload.append(reinterpret_cast<const char*>(cbor.data()), cbor.size());
    return out;
}

std::uint16_t peek_version(std::string_view payload) {
    if (payload.size() < kHeaderSize || payload.substr(0, 4) != std::string_view(kMagic, 4))
        throw WireFormatError(fmt::format("not a docpipe stream document ({} bytes, no 'DPDS' header)", payload.size()));
    return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[4]) << 8) | static_cast<unsigned char>(payload[5]));
}

Decoded decode(std::string_view payload, const BlobReader& read_blob) {
    Decoded d;
    d.version = peek_version(payload);
    if (d.version == 0 || d.version > kWireVersion) throw UnsupportedWireVersion(d.version);
    json body;
    try {
        body = json::from_cbor(payload.substr(kHeaderSize));
    } catch (const json::exception& e) {
        throw WireFormatError(fmt::format("document body is not valid CBOR: {}", e.what()));
    }
    std::string where = "document";
    try {
        Document& doc = d.doc;
        doc.id = body.at("id").get<std::string>();
        where = "document " + doc.id;
        doc.parent_id = body.value("parent_id", "");
        d.job_id = body.value("job_id", "");
        d.producer = body.value("producer", "");
        d.written_ms = body.value("written_ms", std::int64_t{0});
        if (body.contains("attributes")) doc.attributes = body.at("attributes").get<std::map<std::string, std::string>>();
        std::size_t i = 0;
        for (const auto& pj : body.at("parts")) {
            Part p;
            p.name = pj.at("name").get<std::string>();
            p.media_type = pj.at("media_type").get<std::string>();
            p.bytes = take_bytes(pj, read_blob, fmt::format("{} part {} ('{}')", where, i++, p.name));
            if (!p.bytes) p.bytes = std::make_shared<const Bytes>();  // the SDK promises non-null part bytes
            doc.parts.push_back(std::move(p));
        }
        for (const auto& pj : body.at("pages")) {
            Page pg;
            pg.index = pj.at("index").get<int>();
            pg.text_layer = pj.value("text_layer", "");
            if (pj.contains("image")) {
                const auto& ij = pj.at("image");
                pg.image.width = ij.at("width").get<int>();
                pg.image.height = ij.at("height").get<int>();
                pg.image.channels = ij.at("channels").get<int>();
                pg.image.dpi = ij.at("dpi").get<int>();
                pg.image.pixels = take_bytes(ij, read_blob, fmt::format("{} page {}", where, pg.index));
            }
            if (pj.contains("ocr")) {
                const auto& oj = pj.at("ocr");
                OcrResult o;
                o.engine = oj.at("engine").get<std::string>();
                o.text = oj.at("text").get<std::string>();
                o.mean_confidence = oj.at("mean_confidence").get<float>();
                for (const auto& lj : oj.at("lines"))
                    o.lines.push_back(OcrLine{lj.at("text").get<std::string>(), box_of(lj.at("box"), where), lj.at("confidence").get<float>()});
                for (const auto& wj : oj.at("words"))
                    o.words.push_back(OcrWord{wj.at("text").get<std::string>(), box_of(wj.at("box"), where),
                                              wj.at("confidence").get<float>(), wj.at("line").get<int>()});
                pg.ocr = std::move(o);
            }
            doc.pages.push_back(std::move(pg));
        }
        doc.fields = body.at("fields");
        if (body.contains("trace"))
            for (const auto& tj : body.at("trace"))
                doc.trace.push_back(TraceEntry{tj.at("node").get<std::string>(), tj.at("event").get<std::string>(),
                                               tj.at("millis").get<double>(), tj.at("detail").get<std::string>()});
    } catch (const json::exception& e) {
        throw WireFormatError(fmt::format("{}: malformed version {} payload: {}", where, d.version, e.what()));
    }
    return d;
}

}  // namespace docpipe::streams
