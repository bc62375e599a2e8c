#include "services.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "progress.hpp"
#include "docpipe/document.hpp"


namespace docpipe::core {

// ---- personal data in logs --------------------------------------------------------------
//
// A hand-written scanner instead of std::regex: it runs on every log line. One pass decides
// whether there is anything to look at (a digit, an '@' or a name label); then one pass tries
// the matchers at each token start. See services.hpp for what is masked.

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_high(char c) { return static_cast<unsigned char>(c) >= 0x80; }  // part of a UTF-8 letter
bool is_word(char c) { return is_alpha(c) || is_digit(c) || c == '_' || is_high(c); }
char lower(char c) { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

bool contains_ci(std::string_view text, std::string_view word) {
    if (word.size() > text.size()) return false;
    for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
        std::size_t k = 0;
        while (k < word.size() && lower(text[i + k]) == word[k]) ++k;
        if (k == word.size()) return true;
    }
    return false;
}

enum class LabelKind { Name, NameLoose, NamePhrase, MemberId, Policy, Nric };

struct Label {
    std::string_view text;  // lower case; '_' matches ' ', '_', '-' or nothing
    LabelKind kind;
};

// Longest first where one label starts another ("policy_number" before "policy").
constexpr Label kLabels[] = {
    {"my_name_is", LabelKind::NamePhrase},     {"nama_saya", LabelKind::NamePhrase},
    {"full_name", LabelKind::Name},            {"member_name", LabelKind::Name},
    {"patient_name", LabelKind::Name},         {"insured_name", LabelKind::Name},
    {"claimant_name", LabelKind::Name},        {"customer_name", LabelKind::Name},
    {"sender_name", LabelKind::Name},          {"person_name", LabelKind::Name},
    {"nama_ahli", LabelKind::Name},            {"nama_pesakit", LabelKind::Name},
    {"nama_penuh", LabelKind::Name},           {"name", LabelKind::Name},
    {"nama", LabelKind::Name},                 {"insured_person", LabelKind::NameLoose},
    {"patient", LabelKind::NameLoose},         {"pesakit", LabelKind::NameLoose},
    {"claimant", LabelKind::NameLoose},        {"insured", LabelKind::NameLoose},
    {"policyholder", LabelKind::NameLoose},    {"policy_holder", LabelKind::NameLoose},
    {"membership_number", LabelKind::MemberId}, {"membership_no", LabelKind::MemberId},
    {"membership_id", LabelKind::MemberId},    {"member_number", LabelKind::MemberId},
    {"member_no", LabelKind::MemberId},        {"member_id", LabelKind::MemberId},
    {"nombor_ahli", LabelKind::MemberId},      {"no_keahlian", LabelKind::MemberId},
    {"id_ahli", LabelKind::MemberId},          {"no_ahli", LabelKind::MemberId},
    {"ahli", LabelKind::MemberId},             {"member", LabelKind::MemberId},
    {"policy_number", LabelKind::Policy},      {"policy_num", LabelKind::Policy},
    {"policy_no", LabelKind::Policy},          {"policy_id", LabelKind::Policy},
    {"nombor_polisi", LabelKind::Policy},      {"no_polisi", LabelKind::Policy},
    {"policy", LabelKind::Policy},             {"polisi", LabelKind::Policy},
    {"kad_pengenalan", LabelKind::Nric},       {"identity_card", LabelKind::Nric},
    {"nric_no", LabelKind::Nric},              {"nric", LabelKind::Nric},
    {"mykad", LabelKind::Nric},                {"i/c_no", LabelKind::Nric},
    {"i/c", LabelKind::Nric},                  {"ic_no", LabelKind::Nric},
    {"ic", LabelKind::Nric},                   {"no_kp", LabelKind::Nric},
};

// Words in front of "name" that make it something other than a person's name.
constexpr std::string_view kNotAPerson[] = {
    "file", "node", "component", "host", "tab", "sheet", "label", "queue", "topic", "subscription", "bucket", "folder",
    "field", "plugin", "package", "key", "metric", "series", "column", "class", "type", "service", "model", "image",
    "attachment", "drive", "domain", "server", "table", "index", "project", "device", "engine", "page", "path", "rule",
    "stage", "step", "source", "sink", "kind", "event", "header", "parameter", "variable", "program", "command", "process",
    "thread", "spreadsheet", "document", "credential", "secret", "token", "scope", "region", "instance", "unit", "dir",
    "directory", "object", "resource", "account", "app", "function", "method", "property", "setting", "option", "font"};

// Name particles written in lower case inside Malaysian and other names.
constexpr std::string_view kParticles[] = {"bin", "binti", "bt", "bte", "a/l", "a/p", "al", "ap", "anak", "s/o", "d/o", "van",
                                           "von", "de", "da", "del", "la", "le"};

const char* placeholder(LabelKind kind) {
    switch (kind) {
        case LabelKind::Name:
        case LabelKind::NameLoose:
        case LabelKind::NamePhrase: return "[name]";
        case LabelKind::MemberId: return "[member-id]";
        case LabelKind::Policy: return "[policy-no]";
        case LabelKind::Nric: return "[nric]";
    }
    return "[redacted]";
}

struct Match {
    std::size_t value_begin = std::string_view::npos;  // text before it (a label) is kept
    std::size_t end = 0;
    const char* replacement = nullptr;
    explicit operator bool() const { return replacement != nullptr; }
};

class Redactor {
public:
    explicit Redactor(std::string_view in) : in_(in), n_(in.size()) {}

    std::string run(bool emails) {
        emails_ = emails;
        std::string out;
        out.reserve(n_ + 16);
        std::size_t copied = 0;
        for (std::size_t i = 0; i < n_;) {
            const char c = in_[i];
            const bool token_start = i == 0 || !is_word(in_[i - 1]);
            if (token_start && (is_word(c) || c == '+')) {
                if (Match m = try_at(i)) {
                    out.append(in_.substr(copied, m.value_begin - copied));
                    if (m.value_begin > 0 && in_[m.value_begin - 1] == '<') mask_display_name(out);
                    out += m.replacement;
                    i = copied = m.end;
                    continue;
                }
            }
            ++i;
        }
        if (copied == 0) return std::string(in_);
        out.append(in_.substr(copied));
        return out;
    }

private:
    char at(std::size_t i) const { return i < n_ ? in_[i] : '\0'; }

    // `out` ends with "...Siti Aminah <" or '..."Tan, Ah Kow" <': an address's display name,
    // a person's name more often than not.
    static void mask_display_name(std::string& out) {
        std::size_t end = out.size() - 1;  // the '<'
        while (end > 0 && out[end - 1] == ' ') --end;
        if (end == 0) return;
        if (out[end - 1] == '"') {
            const std::size_t open = out.rfind('"', end - 2 < end ? end - 2 : 0);
            if (open == std::string::npos || open + 1 >= end - 1) return;
            out.replace(open + 1, end - 2 - open, "[name]");
            return;
        }
        // Capitalised words (and particles) back to the first one that is not.
        std::size_t begin = end;
        for (int words = 0; words < 6;) {
            std::size_t b = begin;
            while (b > 0 && out[b - 1] == ' ') --b;
            std::size_t e = b;
            while (b > 0 && (is_alpha(out[b - 1]) || is_high(out[b - 1]) || out[b - 1] == '\'' || out[b - 1] == '.' || out[b - 1] == '-' ||
                             out[b - 1] == '/'))
                --b;
            if (b == e) break;
            const bool capital = is_upper(out[b]) || is_high(out[b]);
            bool particle = false;
            for (auto p : kParticles) {
                if (p.size() != e - b) continue;
                bool same = true;
                for (std::size_t k = 0; k < p.size() && same; ++k) same = lower(out[b + k]) == p[k];
                particle = particle || same;
            }
            if (!capital && !particle) break;
            begin = b;
            ++words;
        }
        if (begin == end) return;
        std::size_t stop = end;
        while (stop > begin && out[stop - 1] == ' ') --stop;
        out.replace(begin, stop - begin, "[name]");
    }

    std::size_t digits_from(std::size_t i) const {
        std::size_t j = i;
        while (j < n_ && is_digit(in_[j])) ++j;
        return j - i;
    }

    // Numbers: not glued to a word, a decimal point or another number ("RM1,012.50", "v2-0123").
    bool number_starts(std::size_t i) const {
        if (i == 0) return true;
        const char p = in_[i - 1];
        return !is_word(p) && p != '.' && p != ',' && p != '-' && p != '/' && p != '+';
    }
    bool number_ends(std::size_t j) const {
        if (j >= n_) return true;
        const char c = in_[j];
        if (is_word(c)) return false;
        return !((c == '.' || c == ',' || c == '-' || c == '/') && is_digit(at(j + 1)));
    }

    Match make(std::size_t begin, std::size_t end, const char* what) const {
        Match m;
        m.value_begin = begin;
        m.end = end;
        m.replacement = what;
        return m;
    }

    Match try_at(std::size_t i) {
        if (emails_)
            if (Match m = email(i)) return m;
        if (is_alpha(in_[i]))
            if (Match m = label(i)) return m;
        if (is_digit(in_[i]) || in_[i] == '+') {
            if (!number_starts(i)) return {};
            if (Match m = nric(i)) return m;
            return phone(i);
        }
        return prefixed_id(i);
    }

    // local@domain.tld
    Match email(std::size_t i) const {
        auto local_char = [](char c) { return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; };
        std::size_t j = i;
        while (j < n_ && local_char(in_[j])) ++j;
        if (j == i || at(j) != '@') return {};
        std::size_t k = j + 1, last_dot = std::string_view::npos;
        while (k < n_ && (is_alpha(in_[k]) || is_digit(in_[k]) || in_[k] == '-' || in_[k] == '.')) ++k;
        while (k > j + 1 && in_[k - 1] == '.') --k;  // a full stop after the address
        for (std::size_t d = j + 1; d < k; ++d)
            if (in_[d] == '.') last_dot = d;
        if (last_dot == std::string_view::npos || last_dot <= j + 1 || k - last_dot - 1 < 2) return {};
        for (std::size_t t = last_dot + 1; t < k; ++t)
            if (!is_alpha(in_[t])) return {};
        return make(i, k, "[email]");
    }

    // 900101-14-5678 (or with spaces)
    Match nric(std::size_t i) const {
        if (digits_from(i) != 6) return {};
        const char sep = at(i + 6);
        if (sep != '-' && sep != ' ') return {};
        if (digits_from(i + 7) != 2 || at(i + 9) != sep || digits_from(i + 10) != 4) return {};
        if (!number_ends(i + 14)) return {};
        return make(i, i + 14, "[nric]");
    }

    // +60 12-345 6789, +6012-3456789, 6012 345 6789, 012-345 6789, 03-1234 5678, +44 20 7946 0958
    Match phone(std::size_t i) const {
        std::size_t j = i;
        const bool plus = in_[j] == '+';
        if (plus) ++j;
        if (!is_digit(at(j))) return {};
        const std::size_t first = j;
        struct Group { std::size_t end; std::size_t total; };
        Group groups[8];
        std::size_t count = 0, total = 0;
        while (count < 8) {
            const std::size_t len = digits_from(j);
            total += len;
            j += len;
            groups[count++] = {j, total};
            const char sep = at(j);
            if ((sep != ' ' && sep != '-') || !is_digit(at(j + 1))) break;
            const std::size_t next = digits_from(j + 1);
            // After the first group, groups have 3+ digits; a 2-digit one may follow a
            // country code ("+60 12-345 6789").
            const bool country_code = count == 1 && (plus || (len == 2 && in_[first] == '6' && in_[first + 1] == '0'));
            if (next < 3 && !(country_code && next >= 1)) break;
            ++j;
        }
        for (std::size_t g = count; g-- > 0;) {
            const std::size_t digits = groups[g].total;
            bool ok = false;
            if (plus) ok = digits >= 8 && digits <= 15;
            else if (in_[first] == '0') ok = digits >= 9 && digits <= 11 && in_[first + 1] != '0';
            else if (in_[first] == '6' && at(first + 1) == '0') ok = digits >= 11 && digits <= 12 && at(first + 2) != '0';
            if (ok && number_ends(groups[g].end)) return make(i, groups[g].end, "[phone]");
        }
        return {};
    }

    // M12345, MEM123456789, POL123456789 (the claims rules' own forms)
    Match prefixed_id(std::size_t i) const {
        auto prefix = [&](std::string_view p) {
            for (std::size_t k = 0; k < p.size(); ++k)
                if (lower(at(i + k)) != p[k]) return false;
            return true;
        };
        auto id = [&](std::size_t plen, std::size_t lo, std::size_t hi, const char* what) -> Match {
            const std::size_t d = digits_from(i + plen);
            if (d < lo || d > hi || !number_ends(i + plen + d)) return {};
            return make(i, i + plen + d, what);
        };
        if (prefix("mem"))
            if (Match m = id(3, 6, 12, "[member-id]")) return m;
        if (prefix("pol"))
            if (Match m = id(3, 6, 14, "[policy-no]")) return m;
        if (prefix("m")) return id(1, 5, 10, "[member-id]");
        return {};
    }

    // Matches `text` (see Label) at i; returns the end, or npos.
    std::size_t label_end(std::size_t i, std::string_view text) const {
        std::size_t j = i;
        for (char want : text) {
            if (want == '_') {
                if (at(j) == ' ' || at(j) == '_' || at(j) == '-') ++j;
                continue;
            }
            if (lower(at(j)) != want) return std::string_view::npos;
            ++j;
        }
        if (is_word(at(j))) return std::string_view::npos;  // "names", "policyId"... are other words
        return j;
    }

    bool person_name_context(std::size_t i) const {
        // "file name", "node.name", "host_name": not a person.
        if (i == 0) return true;
        const char p = in_[i - 1];
        if (p == '.' || p == '/') return false;
        if (p != ' ' && p != '_' && p != '-') return true;
        std::size_t e = i - 1, b = e;
        while (b > 0 && is_alpha(in_[b - 1])) --b;
        if (b == e) return true;
        std::string word;
        for (std::size_t k = b; k < e; ++k) word += lower(in_[k]);
        for (auto w : kNotAPerson)
            if (word == w) return false;
        return true;
    }

    std::size_t skip_spaces(std::size_t j) const {
        while (j < n_ && (in_[j] == ' ' || in_[j] == '\t')) ++j;
        return j;
    }

    // The extent of a quoted value starting at the quote `j`, or npos.
    std::size_t quoted_end(std::size_t j) const {
        const char q = in_[j];
        for (std::size_t k = j + 1; k < n_ && k < j + 200; ++k) {
            if (in_[k] == '\\') { ++k; continue; }
            if (in_[k] == q) return k;
        }
        return std::string_view::npos;
    }

    std::size_t name_word_end(std::size_t j) const {
        while (j < n_ && (is_alpha(in_[j]) || is_high(in_[j]) || in_[j] == '\'' || in_[j] == '.' || in_[j] == '-' || in_[j] == '/' ||
                          in_[j] == '@'))
            ++j;
        return j;
    }

    bool is_particle(std::size_t b, std::size_t e) const {
        for (auto p : kParticles) {
            if (p.size() != e - b) continue;
            bool same = true;
            for (std::size_t k = 0; k < p.size() && same; ++k) same = lower(in_[b + k]) == p[k];
            if (same) return true;
        }
        return false;
    }

    // A labelled name: the first word whatever its case, then capitalised words and particles.
    std::size_t name_end(std::size_t j) const {
        std::size_t end = name_word_end(j);
        if (end == j || in_[j] == '.' || in_[j] == '-' || in_[j] == '/' || in_[j] == '\'' || in_[j] == '@') return std::string_view::npos;
        for (int words = 1; words < 6 && at(end) == ' ';) {
            const std::size_t b = end + 1, e = name_word_end(b);
            if (e == b) break;
            if (!(is_upper(in_[b]) || is_high(in_[b]) || is_particle(b, e))) break;
            end = e;
            ++words;
        }
        if (end > j + 1 && in_[end - 1] == '.') --end;  // the sentence's full stop
        return end;
    }

    // An id-like value: letters, digits, '-' and '/', with at least `min_digits` digits.
    std::size_t id_end(std::size_t j, std::size_t min_digits) const {
        std::size_t k = j, digits = 0;
        while (k < n_ && (is_alpha(in_[k]) || is_digit(in_[k]) || in_[k] == '-' || in_[k] == '/')) digits += is_digit(in_[k++]);
        while (k > j && (in_[k - 1] == '-' || in_[k - 1] == '/')) --k;
        return digits >= min_digits ? k : std::string_view::npos;
    }

    Match label(std::size_t i) const {
        const char first = lower(in_[i]);
        for (const auto& l : kLabels) {
            if (l.text.front() != first) continue;
            std::size_t j = label_end(i, l.text);
            if (j == std::string_view::npos) continue;
            if ((l.kind == LabelKind::Name) && !person_name_context(i)) continue;
            if (Match m = labelled_value(j, l.kind)) return m;
        }
        return {};
    }

    Match labelled_value(std::size_t j, LabelKind kind) const {
        if (at(j) == '.') ++j;                                 // "No.", "Policy No."
        if (at(j) == '"' || at(j) == '\'') ++j;                // a JSON key's closing quote
        std::size_t k = skip_spaces(j);
        bool strong = false;
        if (at(k) == ':' || at(k) == '=') {
            strong = true;
            k = skip_spaces(k + 1);
        } else if (kind != LabelKind::NamePhrase) {
            // "Member ID M12345", "patient Siti", "polisi saya ialah POL..."
            if (k == j) return {};
            for (std::string_view w : {"is", "ialah", "adalah", "saya", "was"}) {
                std::size_t e = label_end(k, w);
                if (e != std::string_view::npos && at(e) == ' ') k = skip_spaces(e);
            }
            if (at(k) == ':') k = skip_spaces(k + 1);
        } else if (k == j) {
            return {};
        }
        if (k >= n_ || in_[k] == '[') return {};  // nothing, or masked already
        if (in_[k] == '"' || in_[k] == '\'') {
            if (!strong) return {};
            const std::size_t q = quoted_end(k);
            if (q == std::string_view::npos || q == k + 1) return {};
            if (in_[k + 1] == '[') return {};
            return make(k + 1, q, placeholder(kind));
        }
        std::size_t end = std::string_view::npos;
        switch (kind) {
            case LabelKind::Name:
                if (!strong) return {};
                end = name_end(k);
                break;
            case LabelKind::NameLoose:
                if (!strong && !(is_upper(in_[k]) || is_high(in_[k]))) return {};
                end = name_end(k);
                break;
            case LabelKind::NamePhrase: end = name_end(k); break;
            case LabelKind::MemberId:
            case LabelKind::Policy: end = id_end(k, strong ? 1 : 5); break;
            case LabelKind::Nric: end = id_end(k, 6); break;
        }
        if (end == std::string_view::npos || end == k) return {};
        return make(k, end, placeholder(kind));
    }

    std::string_view in_;
    std::size_t n_;
    bool emails_ = false;
};

// Set while NodeLogger hands an already redacted line to the process logger's sink.
thread_local bool t_line_redacted = false;

struct RedactedScope {
    RedactedScope() { t_line_redacted = true; }
    ~RedactedScope() { t_line_redacted = false; }
};

// Redacts every line before the real sink formats it; on a terminal, keeps a progress line
// (progress.hpp) below the log lines.
class RedactingSink final : public spdlog::sinks::sink {
public:
    RedactingSink(std::shared_ptr<spdlog::sinks::sink> inner, bool terminal) : inner_(std::move(inner)), terminal_(terminal) {}
    void log(const spdlog::details::log_msg& msg) override {
        std::optional<StatusLineGuard> guard;
        if (terminal_) guard.emplace();
        if (t_line_redacted) {
            inner_->log(msg);
            return;
        }
        const std::string text = redact_personal_data(std::string_view(msg.payload.data(), msg.payload.size()));
        spdlog::details::log_msg copy = msg;
        copy.payload = spdlog::string_view_t(text.data(), text.size());
        inner_->log(copy);
    }
    void flush() override { inner_->flush(); }
    void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
    void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override { inner_->set_formatter(std::move(formatter)); }

private:
    std::shared_ptr<spdlog::sinks::sink> inner_;
    bool terminal_;
};

}  // namespace

std::string redact_personal_data(std::string_view message) {
    // One pass: a digit or an '@' means a full look; else only a name label can be there.
    bool at_sign = false, look = false;
    for (std::size_t i = 0; i < message.size(); ++i) {
        const char c = message[i];
        if (c == '@') at_sign = look = true;
        if (look) continue;
        if (is_digit(c)) {
            look = true;
            continue;
        }
        const char l = lower(c);
        if (l != 'n' && l != 'p' && l != 'c' && l != 'i' && l != 'h') continue;
        for (std::string_view hint : {std::string_view("nam"), std::string_view("patient"), std::string_view("pesakit"),
                                      std::string_view("claimant"), std::string_view("insured"), std::string_view("holder")})
            if (hint.front() == l && contains_ci(message.substr(i, hint.size()), hint)) look = true;
    }
    if (!look) return std::string(message);
    return Redactor(message).run(at_sign);
}

// ---- logging -----------------------------------------------------------------------------

std::shared_ptr<spdlog::logger> make_process_logger(const std::string& format, const std::string& level,
                                                    std::shared_ptr<spdlog::sinks::sink> sink) {
    const bool terminal = !sink;
    if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("docpipe", std::make_shared<RedactingSink>(std::move(sink), terminal));
    if (format == "json") logger->set_pattern("%v", spdlog::pattern_time_type::utc);
    else logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::warn);
    return logger;
}

static spdlog::level::level_enum to_spdlog(LogLevel level) {
    switch (level) {
        case LogLevel::Trace: return spdlog::level::trace;
        case LogLevel::Debug: return spdlog::level::debug;
        case LogLevel::Info: return spdlog::level::info;
        case LogLevel::Warn: return spdlog::level::warn;
        case LogLevel::Error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

NodeLogger::NodeLogger(std::shared_ptr<spdlog::logger> sink, std::string node, bool json)
    : sink_(std::move(sink)), node_(std::move(node)), json_(json) {}

bool NodeLogger::enabled(LogLevel level) const { return sink_->should_log(to_spdlog(level)); }

std::string one_line(std::string_view text) {
    const auto is_control = [](unsigned char c) { return c < 0x20 || c == 0x7f; };
    if (std::none_of(text.begin(), text.end(), [&](char c) { return is_control(static_cast<unsigned char>(c)); })) return std::string(text);
    std::string out;
    out.reserve(text.size() + 8);
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (!is_control(c)) out += ch;
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else out += fmt::format("\\x{:02x}", c);
    }
    return out;
}

void NodeLogger::log(LogLevel level, std::string_view message, std::string_view doc_id) {
    const auto lvl = to_spdlog(level);
    if (!sink_->should_log(lvl)) return;
    // Masked here, before the JSON encoding, whatever logger the runtime was given; the
    // process logger's sink then leaves the line alone (the document id must stay readable).
    const std::string text = redact_personal_data(message);
    RedactedScope redacted;
    if (json_) {
        nlohmann::json line{{"ts", iso8601(std::chrono::system_clock::now())},
                            {"level", spdlog::level::to_string_view(lvl).data()},
                            {"node", node_},
                            {"msg", text}};
        if (!doc_id.empty()) line["doc"] = doc_id;
        sink_->log(lvl, "{}", docpipe::json_text(line));
    } else if (doc_id.empty()) {
        sink_->log(lvl, "[{}] {}", node_, one_line(text));  // JSON escapes by itself
    } else {
        sink_->log(lvl, "[{}] {} (doc={})", node_, one_line(text), one_line(doc_id));
    }
}

// ---- metrics -----------------------------------------------------------------------------

namespace {
// Seconds; covers a no-op transform (µs) up to a slow OCR page (tens of seconds).
const std::vector<double> kBuckets = {0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

std::string escape_label(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') { out += "\\n"; continue; }
        out += c;
    }
    return out;
}

std::string format_number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    std::ostringstream s;
    s.precision(15);
    s << v;
    return s.str();
}
}  // namespace

std::string MetricsRegistry::key(std::string_view name, const Labels& labels) {
    std::string k(name);
    if (!labels.empty()) {
        k += '{';
        bool first = true;
        for (const auto& [lk, lv] : labels) {
            if (!first) k += ',';
            first = false;
            k += lk + "=\"" + escape_label(lv) + "\"";
        }
        k += '}';
    }
    return k;
}

void MetricsRegistry::increment(std::string_view name, double by, const Labels& labels) {
    std::lock_guard lock(mutex_);
    auto& s = series_[key(name, labels)];
    s.kind = Series::Counter;
    s.value += by;
}

void MetricsRegistry::set_gauge(std::string_view name, double value, const Labels& labels) {
    std::lock_guard lock(mutex_);
    auto& s = series_[key(name, labels)];
    s.kind = Series::Gauge;
    s.value = value;
}

void MetricsRegistry::observe(std::string_view name, double value, const Labels& labels) {
    std::lock_guard lock(mutex_);
    auto& s = series_[key(name, labels)];
    s.kind = Series::Histogram;
    if (s.bucket_counts.empty()) s.bucket_counts.assign(kBuckets.size(), 0);
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
        if (value <= kBuckets[i]) s.bucket_counts[i] += 1;
    s.sum += value;
    s.count += 1;
}

double MetricsRegistry::value(std::string_view name, const Labels& labels) const {
    std::lock_guard lock(mutex_);
    auto it = series_.find(key(name, labels));
    if (it == series_.end()) return 0;
    return it->second.kind == Series::Histogram ? static_cast<double>(it->second.count) : it->second.value;
}

std::string MetricsRegistry::render_prometheus() const {
    std::lock_guard lock(mutex_);
    std::string out;
    std::string last_name;
    for (const auto& [k, s] : series_) {
        auto brace = k.find('{');
        std::string name = "docpipe_" + k.substr(0, brace);
        std::string labels = brace == std::string::npos ? "" : k.substr(brace + 1, k.size() - brace - 2);
        if (name != last_name) {
            out += "# TYPE " + name + (s.kind == Series::Counter ? " counter\n" : s.kind == Series::Gauge ? " gauge\n" : " histogram\n");
            last_name = name;
        }
        if (s.kind != Series::Histogram) {
            out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + format_number(s.value) + "\n";
            continue;
        }
        std::string sep = labels.empty() ? "" : labels + ",";
        for (std::size_t i = 0; i < kBuckets.size(); ++i)
            out += name + "_bucket{" + sep + "le=\"" + format_number(kBuckets[i]) + "\"} " + format_number(s.bucket_counts[i]) + "\n";
        out += name + "_bucket{" + sep + "le=\"+Inf\"} " + std::to_string(s.count) + "\n";
        out += name + "_sum" + (labels.empty() ? "" : "{" + labels + "}") + " " + format_number(s.sum) + "\n";
        out += name + "_count" + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(s.count) + "\n";
    }
    return out;
}

Labels NodeMetrics::with_node(const Labels& labels) const {
    Labels l = labels;
    l["node"] = node_;
    return l;
}
void NodeMetrics::increment(std::string_view name, double by, const Labels& labels) { registry_.increment(name, by, with_node(labels)); }
void NodeMetrics::set_gauge(std::string_view name, double value, const Labels& labels) { registry_.set_gauge(name, value, with_node(labels)); }
void NodeMetrics::observe(std::string_view name, double value, const Labels& labels) { registry_.observe(name, value, with_node(labels)); }

void SystemClock::sleep_for(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

std::string iso8601(std::chrono::system_clock::time_point t) {
    std::string out;
    append_iso8601(out, t);
    return out;
}

void append_iso8601(std::string& text, std::chrono::system_clock::time_point t) {
    // Written by hand rather than with gmtime_r + strftime: the delivery ledger stamps every
    // delivery with it, on the graph's hot path. The date comes from the day count with the
    // proleptic Gregorian calendar (eras of 400 years), as std::chrono's year_month_day does.
    using namespace std::chrono;
    const auto ms_total = duration_cast<milliseconds>(t.time_since_epoch()).count();
    // The text up to the second is the same for every stamp within that second: each thread
    // keeps the last one it wrote and only writes the milliseconds when the second is
    // unchanged (a busy sink stamps many deliveries a second). Per thread, so no lock.
    struct LastStamp {
        std::int64_t second = std::numeric_limits<std::int64_t>::min();
        char text[25] = {};  // "YYYY-MM-DDTHH:MM:SS.mmmZ"
    };
    static thread_local LastStamp last;
    const std::int64_t second = ms_total >= 0 ? ms_total / 1000 : -((-ms_total + 999) / 1000);  // floor
    if (second == last.second) {
        const auto millis = ms_total - second * 1000;
        last.text[20] = static_cast<char>('0' + millis / 100);
        last.text[21] = static_cast<char>('0' + millis / 10 % 10);
        last.text[22] = static_cast<char>('0' + millis % 10);
        text.append(last.text, 24);
        return;
    }
    std::int64_t days = ms_total / 86'400'000;
    std::int64_t ms_of_day = ms_total % 86'400'000;
    if (ms_of_day < 0) {
        ms_of_day += 86'400'000;
        --days;
    }
    const year_month_day date{sys_days{std::chrono::days{days}}};
    const int year = static_cast<int>(date.year());
    const unsigned month = static_cast<unsigned>(date.month()), day = static_cast<unsigned>(date.day());
    const auto hours = ms_of_day / 3'600'000, minutes = ms_of_day / 60'000 % 60, seconds = ms_of_day / 1000 % 60, millis = ms_of_day % 1000;
    if (year < 0 || year > 9999) {  // outside what four digits hold: the general formatter
        char out[48];
        const int n = std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", year, month, day, static_cast<int>(hours),
                                    static_cast<int>(minutes), static_cast<int>(seconds), static_cast<int>(millis));
        text.append(out, static_cast<std::size_t>(n));
        return;
    }
    // Fixed width, so the digits go straight into place (snprintf cost more than the rest of
    // a ledger write).
    char out[] = "0000-00-00T00:00:00.000Z";
    auto put = [&out](std::size_t at, std::int64_t value, int width) {
        for (int i = width - 1; i >= 0; --i, value /= 10) out[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, hours, 2);
    put(14, minutes, 2);
    put(17, seconds, 2);
    put(20, millis, 3);
    text.append(out, sizeof out - 1);
    last.second = second;
    std::memcpy(last.text, out, sizeof out - 1);
}

}  // namespace docpipe::core
