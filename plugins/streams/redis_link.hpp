// One hiredis connection for the streams package (hiredis 0.14: no TLS, no RESP3).
//
// Contract:
// - Ownership: a RedisLink owns its redisContext; it is opened lazily by the first command
//   and dropped on any I/O error, so the next command reconnects. A Redis restart costs the
//   commands made while it is down, nothing more.
// - Threading: NOT thread-safe. Each thread that talks to Redis owns its link, or the owner
//   guards it with a mutex (the source's ack link is shared by the runtime's ack threads).
// - Errors: `RedisDown` for anything that says "the server could not be reached or the
//   connection broke" (retry later, not the document's fault); `RedisReplyError` for an error
//   reply (-ERR, -NOGROUP, -OOM ...) on a working connection. Both name host:port and command.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "docpipe/config_spec.hpp"

struct redisContext;
struct redisReply;

namespace docpipe::streams {

struct RedisAddress {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string password;
    int db = 0;
    std::string describe() const;  // "host:port/db", never the password
};

// Parses redis://[:password@]host[:port][/db]. Throws std::invalid_argument naming the
// expected form (the URL itself is not repeated: it may carry a password).
RedisAddress parse_redis_url(const std::string& url);

// The address a stream component's `redis` and `password` options give (redis_url_field(),
// redis_password_field()); `password` wins over one in the URL. Throws std::invalid_argument
// naming the node and the option.
RedisAddress redis_address_from(const Config& config, std::string_view node);

class RedisDown : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class RedisReplyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ReplyFree {
    void operator()(redisReply* r) const;
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

class RedisLink {
public:
    // `command_timeout` bounds one round trip; a caller that blocks server-side (XREADGROUP
    // BLOCK) must give a timeout longer than its block time.
    RedisLink(RedisAddress address, std::chrono::milliseconds connect_timeout, std::chrono::milliseconds command_timeout);
    ~RedisLink();
    RedisLink(const RedisLink&) = delete;
    RedisLink& operator=(const RedisLink&) = delete;

    // Sends one command with binary-safe arguments and returns its reply (never an error
    // reply: those throw RedisReplyError).
    Reply command(const std::vector<std::string>& args);
    // Drops the connection (the next command reconnects).
    void reset();
    bool connected() const { return ctx_ != nullptr; }
    const RedisAddress& address() const { return address_; }

private:
    void connect();
    RedisAddress address_;
    std::chrono::milliseconds connect_timeout_, command_timeout_;
    redisContext* ctx_ = nullptr;
};

// Small reply helpers: they throw RedisReplyError when the reply has an unexpected shape.
std::string reply_string(const redisReply* r);
bool reply_is_nil(const redisReply* r);

// The connection options both stream components take, described once. `verb`: what the
// component does with the stream ("write to", "read from").
Field redis_url_field(std::string_view verb);
Field redis_password_field();

}  // namespace docpipe::streams
