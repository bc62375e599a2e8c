#include "docpipe/registry.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <system_error>

#include <boost/dll/shared_library.hpp>
#include <fmt/core.h>

#ifndef DOCPIPE_INSTALL_PLUGIN_DIR
#define DOCPIPE_INSTALL_PLUGIN_DIR "/usr/local/lib/docpipe/plugins"
#endif

#ifndef DOCPIPE_PLUGIN_DIR_FROM_BIN
#define DOCPIPE_PLUGIN_DIR_FROM_BIN "../lib/docpipe/plugins"
#endif

namespace docpipe {

namespace fs = std::filesystem;

struct Registry::Impl {
    // Libraries stay loaded for the Registry's lifetime: descriptors point into them.
    std::vector<boost::dll::shared_library> libraries;
    std::vector<LoadedPlugin> plugins;
    std::vector<RejectedPlugin> rejected;
    std::vector<std::string> searched;
    std::map<std::string, std::pair<const ComponentDescriptor*, fs::path>, std::less<>> components;
    std::vector<std::unique_ptr<PluginManifest>> builtin_manifests;

    void reject(const fs::path& path, std::string reason) { rejected.push_back({path, std::move(reason)}); }

    // Checks a manifest and registers its components; returns an error text or "".
    std::string admit(const PluginManifest& manifest, const fs::path& origin) {
        std::map<std::string, int> seen;
        for (const auto& d : manifest.components) {
            const std::string prefix = std::string(to_string(d.kind)) + ".";
            if (d.name.rfind(prefix, 0) != 0 || d.name.size() == prefix.size())
                return fmt::format("component name '{}' must start with its kind, e.g. '{}name'", d.name, prefix);
            if (!d.create) return fmt::format("component '{}' has no factory (use docpipe::component<T>())", d.name);
            if (++seen[d.name] > 1) return fmt::format("component '{}' is declared twice in package '{}'", d.name, manifest.package);
            auto it = components.find(d.name);
            if (it != components.end())
                return fmt::format("component '{}' is provided twice: by {} and by {}; keeping the first (remove one of them)",
                                   d.name, it->second.second.string(), origin.string());
        }
        for (const auto& d : manifest.components) components.emplace(d.name, std::make_pair(&d, origin));
        plugins.push_back({origin, &manifest});
        return {};
    }
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
Registry::~Registry() = default;

void Registry::load_directory(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        impl_->searched.push_back(dir.string() + " (missing)");
        return;
    }
    impl_->searched.push_back(dir.string());
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.is_regular_file() && entry.path().extension() == ".so") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) load_file(f);
}

bool Registry::load_file(const fs::path& file) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(file, ec);
    if (ec) canonical = file;
    for (const auto& p : impl_->plugins)
        if (p.path == canonical) return true;  // the same file found through two search paths

    // A plain dlopen first, to get the loader's own words (dlerror) when it fails, and with
    // RTLD_NODELETE so the library stays mapped for the life of the process: documents and
    // buffers a plugin made (their deleters live in its code) may outlive the Registry.
    // RTLD_NOW: a function the plugin calls that nothing defines is refused here, by name,
    // instead of killing a running pipeline ("symbol lookup error") at its first call.
    // Boost.DLL then holds the library (the second open just bumps the reference count).
    void* probe = ::dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!probe) {
        const char* why = ::dlerror();
        impl_->reject(canonical, fmt::format("cannot load: {}", why ? why : "dlopen failed"));
        return false;
    }
    boost::dll::shared_library library;
    try {
        library.load(canonical, boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local);
    } catch (const std::exception& e) {
        ::dlclose(probe);
        impl_->reject(canonical, fmt::format("cannot load: {}", e.what()));
        return false;
    }
    ::dlclose(probe);
    if (!library.has(kAbiSymbol)) {
        impl_->reject(canonical, fmt::format("missing entry symbol '{}': not a docpipe plugin, or built without "
                                             "DOCPIPE_PLUGIN(...)", kAbiSymbol));
        return false;
    }
    const auto& abi = library.get<const docpipe_plugin_abi_info>(kAbiSymbol);
    if (abi.sdk_abi_version != kSdkAbiVersion) {
        impl_->reject(canonical, fmt::format("SDK ABI version mismatch: plugin built for ABI {}, this runtime has ABI {}; "
                                             "rebuild the plugin against this SDK", abi.sdk_abi_version, kSdkAbiVersion));
        return false;
    }
    const std::string tag = abi.compiler_tag ? abi.compiler_tag : "";
    if (tag != kCompilerTag) {
        impl_->reject(canonical, fmt::format("compiler tag mismatch: plugin built with '{}', this runtime with '{}'; "
                                             "rebuild the plugin with the same compiler and standard library", tag, kCompilerTag));
        return false;
    }
    if (!library.has(kManifestSymbol)) {
        impl_->reject(canonical, fmt::format("missing entry symbol '{}' (the ABI struct is there, the manifest is not)",
                                             kManifestSymbol));
        return false;
    }
    const PluginManifest* manifest = nullptr;
    try {
        manifest = &library.get_alias<ManifestFunction>(kManifestSymbol)();
    } catch (const std::exception& e) {
        impl_->reject(canonical, fmt::format("building the plugin manifest threw: {}", e.what()));
        return false;
    } catch (...) {
        // `throw 42`: one plugin's fault must not stop every command that loads plugins.
        impl_->reject(canonical, "building the plugin manifest threw something that is not a std::exception");
        return false;
    }
    std::string error = impl_->admit(*manifest, canonical);
    if (!error.empty()) {
        impl_->reject(canonical, error);
        return false;
    }
    impl_->libraries.push_back(std::move(library));
    return true;
}

void Registry::add_builtin(const PluginManifest& manifest, std::string origin) {
    impl_->builtin_manifests.push_back(std::make_unique<PluginManifest>(manifest));
    std::string error = impl_->admit(*impl_->builtin_manifests.back(), origin);
    if (!error.empty()) impl_->reject(origin, error);
}

const ComponentDescriptor* Registry::find(std::string_view name) const {
    auto it = impl_->components.find(name);
    return it == impl_->components.end() ? nullptr : it->second.first;
}

fs::path Registry::provider_of(std::string_view name) const {
    auto it = impl_->components.find(name);
    return it == impl_->components.end() ? fs::path() : it->second.second;
}

std::vector<std::string> Registry::component_names() const {
    std::vector<std::string> names;
    for (const auto& [name, _] : impl_->components) names.push_back(name);
    return names;
}

const std::vector<LoadedPlugin>& Registry::plugins() const { return impl_->plugins; }
const std::vector<RejectedPlugin>& Registry::rejected() const { return impl_->rejected; }
const std::vector<std::string>& Registry::searched_directories() const { return impl_->searched; }

std::vector<fs::path> default_plugin_directories() {
    std::vector<fs::path> dirs;
    if (const char* env = std::getenv("DOCPIPE_PLUGIN_PATH")) {
        std::string value = env;
        std::size_t start = 0;
        while (start <= value.size()) {
            std::size_t end = value.find(':', start);
            if (end == std::string::npos) end = value.size();
            if (end > start) dirs.emplace_back(value.substr(start, end - start));
            start = end + 1;
        }
    }
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        // Relative to the executable, so a relocated install finds its own plugins: the build
        // tree's <bin>/../lib/docpipe/plugins, then the install's plugin folder seen from its
        // bin folder (differs when libdir is lib64 or lib/<multiarch>).
        for (const char* rel : {"../lib/docpipe/plugins", DOCPIPE_PLUGIN_DIR_FROM_BIN}) {
            fs::path d = (exe.parent_path() / rel).lexically_normal();
            if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
        }
    }
    fs::path installed = DOCPIPE_INSTALL_PLUGIN_DIR;
    if (std::find(dirs.begin(), dirs.end(), installed) == dirs.end()) dirs.push_back(installed);
    return dirs;
}

}  // namespace docpipe
