// A real redis-server for tests: started on a free loopback port in a temp folder,
// stopped by its own pid (never by name), restartable on the same port. A persistent one
// keeps an append-only file (fsync on every write) in its folder, so what was written
// before stop() is there again after start()/restart().
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <hiredis/hiredis.h>

namespace docpipe::test {

class RedisServer {
public:
    enum class Persistence { None, AppendOnly };

    explicit RedisServer(Persistence persistence = Persistence::None) : persistence_(persistence) {
        std::string pattern = (std::filesystem::temp_directory_path() / "docpipe-redis-XXXXXX").string();
        dir_ = mkdtemp(pattern.data());
        port_ = free_port();
        start();
    }
    ~RedisServer() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    int port() const { return port_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

    void start() {
        const std::string persistence =
            persistence_ == Persistence::AppendOnly ? " --save '' --appendonly yes --appendfsync always" : " --save '' --appendonly no";
        const std::string cmd = "redis-server --port " + std::to_string(port_) + " --bind 127.0.0.1" + persistence +
                                " --daemonize yes --dir " + dir_.string() + " --pidfile " + (dir_ / "redis.pid").string() +
                                " --logfile " + (dir_ / "redis.log").string();
        if (std::system(cmd.c_str()) != 0)
            throw std::runtime_error("cannot start redis-server (is it installed? scripts/install-deps.sh installs it)");
        for (int i = 0; i < 500; ++i) {
            if (ping()) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        throw std::runtime_error("redis-server did not answer PING on port " + std::to_string(port_));
    }

    void stop() {
        std::ifstream in(dir_ / "redis.pid");
        pid_t pid = 0;
        if (!(in >> pid) || pid <= 0) return;
        in.close();
        ::kill(pid, SIGTERM);
        for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        std::filesystem::remove(dir_ / "redis.pid");
    }

    // Stops the server and starts it again on the same port and folder.
    void restart() {
        stop();
        start();
    }

    bool ping() const {
        timeval tv{0, 200000};
        redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
        bool ok = false;
        if (c && !c->err) {
            auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
            ok = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
        }
        if (c) redisFree(c);
        return ok;
    }

private:
    static int free_port() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        socklen_t len = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        ::close(fd);
        return ntohs(addr.sin_port);
    }

    Persistence persistence_ = Persistence::None;
    std::filesystem::path dir_;
    int port_ = 0;
};

}  // namespace docpipe::test
