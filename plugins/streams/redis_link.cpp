#include "redis_link.hpp"

#include <hiredis/hiredis.h>

#include <regex>

#include <fmt/core.h>

#include "docpipe/no_sigpipe.hpp"

namespace docpipe::streams {

std::string RedisAddress::describe() const { return fmt::format("{}:{}/{}", host, port, db); }

RedisAddress parse_redis_url(const std::string& url) {
    static const std::regex kUrl(R"(redis://(?::([^@]*)@)?([^:/@]+)(?::(\d+))?(?:/(\d+))?/?)");
    std::smatch m;
    if (!std::regex_match(url, m, kUrl))
        throw std::invalid_argument("cannot parse the redis URL (expected redis://[:password@]host[:port][/db])");
    RedisAddress a;
    a.password = m[1].str();
    a.host = m[2].str();
    if (m[3].matched) a.port = std::stoi(m[3].str());
    if (m[4].matched) a.db = std::stoi(m[4].str());
    return a;
}

void ReplyFree::operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
}

RedisLink::RedisLink(RedisAddress address, std::chrono::milliseconds connect_timeout, std::chrono::milliseconds command_timeout)
    : address_(std::move(address)), connect_timeout_(connect_timeout), command_timeout_(command_timeout) {}

RedisLink::~RedisLink() { reset(); }

void RedisLink::reset() {
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
}

static timeval to_timeval(std::chrono::milliseconds d) {
    timeval tv{};
    tv.tv_sec = static_cast<long>(d.count() / 1000);
    tv.tv_usec = static_cast<long>((d.count() % 1000) * 1000);
    return tv;
}

void RedisLink::connect() {
    if (ctx_) return;
    redisContext* c = redisConnectWithTimeout(address_.host.c_str(), address_.port, to_timeval(connect_timeout_));
    if (!c || c->err) {
        std::string why = c ? c->errstr : "out of memory";
        if (c) redisFree(c);
        throw RedisDown(fmt::format("redis {}: cannot connect: {}", address_.describe(), why));
    }
    redisSetTimeout(c, to_timeval(command_timeout_));
    ctx_ = c;
    // AUTH/SELECT through command(): a failure there drops the fresh connection too.
    if (!address_.password.empty()) command({"AUTH", address_.password});
    if (address_.db != 0) command({"SELECT", std::to_string(address_.db)});
}

Reply RedisLink::command(const std::vector<std::string>& args) {
    connect();
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    ScopedNoSigpipe no_sigpipe;  // hiredis writes with write(2): a restarted Redis must be an error, not a signal
    auto* raw = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!raw) {
        std::string why = ctx_->errstr;
        reset();  // a broken context cannot be reused; the next command reconnects
        throw RedisDown(fmt::format("redis {}: {} failed: {}", address_.describe(), args.empty() ? "" : args[0], why));
    }
    Reply reply(raw);
    if (reply->type == REDIS_REPLY_ERROR) {
        std::string text(reply->str, reply->len);
        // A server that is loading its data set after a restart is "down" for our purposes.
        if (text.rfind("LOADING", 0) == 0 || text.rfind("MASTERDOWN", 0) == 0)
            throw RedisDown(fmt::format("redis {}: {} answered: {}", address_.describe(), args[0], text));
        throw RedisReplyError(fmt::format("redis {}: {} answered: {}", address_.describe(), args[0], text));
    }
    return reply;
}

std::string reply_string(const redisReply* r) {
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
        throw RedisReplyError(fmt::format("redis: expected a string reply, got type {}", r ? r->type : -1));
    return std::string(r->str, r->len);
}

bool reply_is_nil(const redisReply* r) { return !r || r->type == REDIS_REPLY_NIL; }

RedisAddress redis_address_from(const Config& config, std::string_view node) {
    try {
        RedisAddress address = parse_redis_url(config.get_string("redis"));
        if (config.has("password") && !config.get_string("password").empty()) address.password = config.get_string("password");
        return address;
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(fmt::format("node '{}': config 'redis': {}", node, e.what()));
    }
}

Field redis_url_field(std::string_view verb) {
    return Field::string("redis").default_value("redis://127.0.0.1:6379/0")
        .describe(fmt::format("Redis to {}, redis://host[:port][/db] — usually the state store's Redis (${{REDIS_URL}}); "
                              "give a password in `password`, not here", verb));
}

Field redis_password_field() {
    return Field::string("password").secret().describe("Redis AUTH password, e.g. \"${file:/etc/docpipe/credentials/redis}\" "
                                                       "(overrides one in the URL)");
}

}  // namespace docpipe::streams
