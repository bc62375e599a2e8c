// Chooses a backend by name.
#include "store.hpp"

namespace docpipe::core {

std::unique_ptr<Store> make_memory_store(Clock& clock);
std::unique_ptr<Store> make_sqlite_store(const std::string& path, Clock& clock);
std::unique_ptr<Store> make_redis_store(const std::string& url, Clock& clock);

std::unique_ptr<Store> open_store(const std::string& backend, const std::string& path_or_url, Clock& clock) {
    if (backend == "memory") return make_memory_store(clock);
    if (backend == "sqlite") return make_sqlite_store(path_or_url, clock);
    if (backend == "redis") return make_redis_store(path_or_url, clock);
    throw StoreError("unknown state backend '" + backend + "' (sqlite, redis or memory)");
}

}  // namespace docpipe::core
