// core/plugin/registry.cpp: loading provider plugins with Boost.DLL and calling their hooks safely.
// SPDX-License-Identifier: Apache-2.0
#include "core/plugin/registry.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstring>
#include <exception>
#include <filesystem>
#include <system_error>
#include <utility>

#include "anonymily/plugin.h"
#include "core/plugin/host_services.h"

namespace anm::plugin {
namespace {

constexpr size_t kErrorBytes = kPluginErrorBytes;
constexpr size_t kMaxNameBytes = kMaxProviderNameBytes;

/// Every struct starts with struct_size, abi_major and abi_minor: 8 bytes that never change.
constexpr uint32_t kVersionHeaderBytes = 8;

/// The descriptor as ABI 1.0 defines it: up to and including `verify`.
constexpr uint32_t kDescriptorBytesV1_0 = offsetof(anm_plugin, verify) + sizeof(anm_plugin::verify);

Poco::Logger& hostLogger() { return Poco::Logger::get("anm.plugin"); }

// One log line per event: control characters become spaces and quotes are escaped, so that a
// value can sit inside key="..." without breaking the line apart.
std::string escapeQuoted(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      out.push_back(' ');
      continue;
    }
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string copyCString(const char* text, size_t cap) {
  if (text == nullptr) return {};
  return std::string(text, strnlen(text, cap));
}

bool isValidName(const char* name) {
  if (name == nullptr) return false;
  const size_t len = strnlen(name, kMaxNameBytes + 1);
  if (len == 0 || len > kMaxNameBytes) return false;
  for (size_t i = 0; i < len; ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The error text a hook wrote, never trusting it to be terminated.
std::string errorText(const char* err) { return std::string(err, strnlen(err, kErrorBytes - 1)); }

std::string exceptionText(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return std::string("exception: ") + e.what();
  } catch (...) {
    return "exception of unknown type";
  }
}

// Boost.DLL puts dlerror's text in what() between a fixed prefix and the errno text, which is
// unrelated leftover state; keep only the dlerror part when it is there.
std::string dlerrorText(const std::string& what) {
  static constexpr std::string_view kMarker = "dlerror system message: ";
  const size_t start = what.find(kMarker);
  if (start == std::string::npos) return what;
  const size_t from = start + kMarker.size();
  const size_t close = what.rfind(')');
  if (close == std::string::npos || close < from) return what.substr(from);
  return what.substr(from, close - from);
}

std::string absolutePath(const std::string& file) {
  std::error_code ec;
  const std::filesystem::path path = std::filesystem::absolute(file, ec);
  if (ec) return file;
  return path.lexically_normal().string();
}

bool looksLikeLibrary(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  return ext == ".so" || ext == ".dylib" || ext == ".dll";
}

// The C views of a hook's settings; they borrow from the hook record.
class SettingsView {
 public:
  explicit SettingsView(const store::HookRecord& hook) {
    options_.reserve(hook.options.size());
    for (const auto& [key, value] : hook.options) {
      options_.push_back({{key.data(), key.size()}, {value.data(), value.size()}});
    }
    settings_.struct_size = sizeof(anm_settings);
    settings_.reserved = 0;
    settings_.secret = {reinterpret_cast<const uint8_t*>(hook.secret.data()), hook.secret.size()};
    settings_.tolerance_s = hook.toleranceS;
    settings_.options = options_.empty() ? nullptr : options_.data();
    settings_.option_count = options_.size();
  }
  SettingsView(const SettingsView&) = delete;
  SettingsView& operator=(const SettingsView&) = delete;

  const anm_settings* get() const { return &settings_; }

 private:
  std::vector<anm_option> options_;
  anm_settings settings_{};
};

anm_str str(std::string_view text) { return {text.data(), text.size()}; }

Outcome internalOutcome(std::string message) {
  Outcome outcome;
  outcome.verdict = store::Verdict::kInvalid;
  outcome.reason = ANM_REASON_INTERNAL;
  outcome.message = std::move(message);
  return outcome;
}

}  // namespace

struct Registry::Loaded {
  // NOTE: members are destroyed bottom-up, so the library is released last, after the host
  // table the plugin may still point at.
  boost::dll::shared_library library;
  const anm_plugin* descriptor = nullptr;
  std::unique_ptr<HostApi> host;
  void* state = nullptr;
  PluginInfo info;
};

Registry::Registry() = default;

Registry::~Registry() {
  // Shut down in reverse load order; a plugin's failure here must not stop the others.
  for (auto it = plugins_.rbegin(); it != plugins_.rend(); ++it) {
    Loaded& plugin = **it;
    if (plugin.descriptor->shutdown == nullptr) continue;
    try {
      plugin.descriptor->shutdown(plugin.state);
    } catch (...) {
      hostLogger().warning("plugin hook failed provider=%s hook=shutdown reason=\"%s\"",
                           plugin.info.name, escapeQuoted(exceptionText(std::current_exception())));
    }
  }
}

std::vector<LoadFailure> Registry::loadDirectory(const std::string& dir) {
  std::vector<LoadFailure> failures;

  // Collect the candidates first so that they load in name order, whatever the file system's.
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    const std::string reason = "could not read directory: " + ec.message();
    hostLogger().warning("could not load plugins dir=%s reason=\"%s\"", dir, escapeQuoted(reason));
    failures.push_back({absolutePath(dir), reason});
    return failures;
  }
  for (const auto& entry : it) {
    std::error_code typeEc;
    if (!entry.is_regular_file(typeEc) || !looksLikeLibrary(entry.path())) continue;
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    return a.filename().string() < b.filename().string();
  });

  for (const auto& file : files) {
    if (auto failure = loadFile(file.string())) failures.push_back(std::move(*failure));
  }
  return failures;
}

std::optional<LoadFailure> Registry::loadFile(const std::string& file) {
  const std::string path = absolutePath(file);
  auto refuse = [&path](const std::string& reason) {
    hostLogger().warning("could not load plugin file=%s reason=\"%s\"", path, escapeQuoted(reason));
    return LoadFailure{path, reason};
  };

  // RTLD_NOW reports a missing dependency here rather than at the first webhook; RTLD_LOCAL
  // keeps one plugin's symbols from resolving another's.
  auto loaded = std::make_unique<Loaded>();
  try {
    loaded->library.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refuse("not a loadable library: " + dlerrorText(e.what()));
  }
  if (!loaded->library.has(ANM_PLUGIN_ENTRY_SYMBOL)) {
    return refuse("missing entry symbol " ANM_PLUGIN_ENTRY_SYMBOL);
  }

  // The entry function is the first plugin code that runs; it must not throw either.
  const anm_plugin* d = nullptr;
  try {
    d = loaded->library.get<const anm_plugin*()>(ANM_PLUGIN_ENTRY_SYMBOL)();
  } catch (...) {
    return refuse("entry function threw an " + exceptionText(std::current_exception()));
  }
  if (d == nullptr) return refuse("entry function returned NULL");

  // Size and major version come before anything else: they say how to read the rest.
  if (d->struct_size < kVersionHeaderBytes) {
    return refuse("descriptor struct_size " + std::to_string(d->struct_size) +
                  " is smaller than its version header");
  }
  if (d->abi_major != ANM_ABI_MAJOR) {
    return refuse("incompatible ABI major version: expected " + std::to_string(ANM_ABI_MAJOR) +
                  ", found " + std::to_string(d->abi_major));
  }
  if (d->struct_size < kDescriptorBytesV1_0) {
    return refuse("descriptor struct_size " + std::to_string(d->struct_size) +
                  " is smaller than the " + std::to_string(kDescriptorBytesV1_0) +
                  " bytes of an ABI 1.0 descriptor");
  }
  if (d->abi_minor > ANM_ABI_MINOR) {
    return refuse("plugin needs ABI " + std::to_string(d->abi_major) + "." +
                  std::to_string(d->abi_minor) + " but this edge offers " +
                  std::to_string(ANM_ABI_MAJOR) + "." + std::to_string(ANM_ABI_MINOR));
  }

  // The name is what hooks refer to; it must be usable in URLs, logs and logger names.
  if (!isValidName(d->name)) {
    return refuse("bad provider name \"" + copyCString(d->name, kMaxNameBytes + 1) +
                  "\": must be lower-case [a-z0-9_-], 1 to 32 characters");
  }
  const std::string name(d->name);
  if (d->verify == nullptr) return refuse("provider " + name + " has no verify hook");
  for (const auto& other : plugins_) {
    if (other->info.name == name) {
      return refuse("provider " + name + " is already loaded from " + other->info.file);
    }
  }

  // Copy the descriptor's strings now: nothing of the library's memory is kept by reference.
  loaded->descriptor = d;
  loaded->info.name = name;
  loaded->info.version = copyCString(d->version, kMaxPluginVersionBytes);
  loaded->info.summary = copyCString(d->summary, kMaxPluginSummaryBytes);
  loaded->info.abiMajor = d->abi_major;
  loaded->info.abiMinor = d->abi_minor;
  loaded->info.file = path;
  loaded->host = std::make_unique<HostApi>(name);

  // init runs once; a failed init means the plugin is not used and not shut down.
  if (d->init != nullptr) {
    char err[kErrorBytes] = {};
    anm_status status = ANM_ERR_INTERNAL;
    try {
      status = d->init(loaded->host->table(), &loaded->state, err, sizeof(err));
    } catch (...) {
      return refuse("init threw an " + exceptionText(std::current_exception()));
    }
    err[sizeof(err) - 1] = '\0';
    if (status != ANM_OK) {
      const std::string message = errorText(err);
      return refuse("init failed with status " + std::to_string(status) +
                    (message.empty() ? std::string() : ": " + message));
    }
  }

  hostLogger().information("loaded plugin provider=%s version=%s abi=%d.%d file=%s", name,
                           loaded->info.version, static_cast<int>(loaded->info.abiMajor),
                           static_cast<int>(loaded->info.abiMinor), path);
  plugins_.push_back(std::move(loaded));
  return std::nullopt;
}

std::vector<PluginInfo> Registry::list() const {
  std::vector<PluginInfo> out;
  out.reserve(plugins_.size());
  for (const auto& plugin : plugins_) out.push_back(plugin->info);
  return out;
}

bool Registry::has(std::string_view provider) const { return find(provider) != nullptr; }

const Registry::Loaded* Registry::find(std::string_view provider) const {
  for (const auto& plugin : plugins_) {
    if (plugin->info.name == provider) return plugin.get();
  }
  return nullptr;
}

std::string Registry::checkSettings(const store::HookRecord& hook) const {
  if (hook.provider.empty()) return {};

  // An unknown provider is answered with what could have been meant.
  const Loaded* plugin = find(hook.provider);
  if (plugin == nullptr) {
    std::vector<std::string> names;
    for (const auto& p : plugins_) names.push_back(p->info.name);
    std::sort(names.begin(), names.end());
    std::string loaded;
    for (const auto& n : names) loaded += (loaded.empty() ? "" : ", ") + n;
    return "unknown provider \"" + hook.provider +
           "\"; loaded: " + (loaded.empty() ? std::string("none") : loaded);
  }
  if (plugin->descriptor->check_settings == nullptr) return {};

  SettingsView settings(hook);
  char err[kErrorBytes] = {};
  anm_status status = ANM_ERR_INTERNAL;
  try {
    status = plugin->descriptor->check_settings(plugin->state, settings.get(), err, sizeof(err));
  } catch (...) {
    hostLogger().warning("plugin hook failed provider=%s hook=check_settings reason=\"%s\"",
                         plugin->info.name, escapeQuoted(exceptionText(std::current_exception())));
    return "provider " + plugin->info.name + " failed to check the settings";
  }
  err[sizeof(err) - 1] = '\0';
  if (status == ANM_OK) return {};
  const std::string message = errorText(err);
  if (!message.empty()) return message;
  return "provider " + plugin->info.name + " refused the settings (status " +
         std::to_string(status) + ")";
}

Outcome Registry::verify(const store::HookRecord& hook, const RequestView& request) const {
  // A hook without a provider accepts everything; there is nothing to check.
  if (hook.provider.empty()) {
    Outcome outcome;
    outcome.verdict = store::Verdict::kUnsigned;
    outcome.reason = ANM_REASON_NOT_SIGNED;
    outcome.message = "hook has no provider";
    return outcome;
  }
  const Loaded* plugin = find(hook.provider);
  if (plugin == nullptr) {
    return internalOutcome("provider \"" + hook.provider + "\" is not loaded");
  }

  // C views of the request and settings; they borrow from the caller for this call only.
  std::vector<anm_header> headers;
  if (request.headers != nullptr) {
    headers.reserve(request.headers->size());
    for (const auto& h : *request.headers) headers.push_back({str(h.name), str(h.value)});
  }
  anm_request req{};
  req.struct_size = sizeof(anm_request);
  req.method = str(request.method);
  req.path_suffix = str(request.pathSuffix);
  req.raw_query = str(request.rawQuery);
  req.headers = headers.empty() ? nullptr : headers.data();
  req.header_count = headers.size();
  req.body = {reinterpret_cast<const uint8_t*>(request.body.data()), request.body.size()};
  req.received_at_ms = request.receivedAtMs;
  req.hook_id = str(request.hookId);
  SettingsView settings(hook);

  // The hook runs inside a catch-all: a plugin that throws costs one request, not the edge.
  ResultCollector result;
  char err[kErrorBytes] = {};
  anm_status status = ANM_ERR_INTERNAL;
  std::string failure;
  try {
    status = plugin->descriptor->verify(plugin->state, settings.get(), &req, result.handle(), err,
                                        sizeof(err));
  } catch (...) {
    failure = exceptionText(std::current_exception());
  }
  err[sizeof(err) - 1] = '\0';
  if (failure.empty() && status != ANM_OK) {
    const std::string message = errorText(err);
    failure = "status " + std::to_string(status) + (message.empty() ? "" : ": " + message);
  }
  if (failure.empty() && !result.hasVerdict()) failure = "no verdict recorded";

  // Whatever the plugin recorded before failing is discarded: only a clean OK counts.
  if (!failure.empty()) {
    hostLogger().warning("plugin hook failed provider=%s hook=verify reason=\"%s\"",
                         plugin->info.name, escapeQuoted(failure));
    return internalOutcome("plugin " + plugin->info.name + " failed: " + failure);
  }
  if (!result.problem().empty()) {
    hostLogger().warning("plugin response refused provider=%s reason=\"%s\"", plugin->info.name,
                         escapeQuoted(result.problem()));
  }
  return result.outcome();
}

std::string_view reasonName(int32_t reason) {
  switch (reason) {
    case ANM_REASON_OK:
      return "ok";
    case ANM_REASON_HEADER_MISSING:
      return "header_missing";
    case ANM_REASON_HEADER_MALFORMED:
      return "header_malformed";
    case ANM_REASON_TIMESTAMP_MISSING:
      return "timestamp_missing";
    case ANM_REASON_TIMESTAMP_OUTSIDE:
      return "timestamp_outside";
    case ANM_REASON_SIGNATURE_MISMATCH:
      return "signature_mismatch";
    case ANM_REASON_SECRET_MISSING:
      return "secret_missing";
    case ANM_REASON_ALGORITHM_REFUSED:
      return "algorithm_refused";
    case ANM_REASON_NOT_SIGNED:
      return "not_signed";
    case ANM_REASON_INTERNAL:
      return "internal";
    default:
      return "unknown";
  }
}

std::string_view verdictName(store::Verdict verdict) {
  switch (verdict) {
    case store::Verdict::kValid:
      return "valid";
    case store::Verdict::kInvalid:
      return "invalid";
    case store::Verdict::kUnsigned:
      return "unsigned";
  }
  return "unknown";
}

}  // namespace anm::plugin
