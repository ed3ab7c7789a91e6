// core/plugin/registry.cpp: loading provider plugins with Boost.DLL and calling their hooks safely.
// SPDX-License-Identifier: Apache-2.0
#include "core/plugin/registry.h"

#include <Poco/Logger.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
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

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

/// memfd_create's flag for an executable file (linux/memfd.h of Linux 6.3), which older C
/// library headers do not define.
#ifdef MFD_EXEC
constexpr unsigned int kMemfdExec = MFD_EXEC;
#else
constexpr unsigned int kMemfdExec = 0x0010U;
#endif

/// What identifies one version of a file: a replaced file has another inode, a file rewritten
/// in place another size or modification time.
struct FileStamp {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = -1;
  int64_t modifiedNs = 0;

  bool operator==(const FileStamp& other) const {
    return device == other.device && inode == other.inode && size == other.size &&
           modifiedNs == other.modifiedNs;
  }
};

FileStamp stampOf(const struct stat& info) {
  FileStamp stamp;
  stamp.device = info.st_dev;
  stamp.inode = info.st_ino;
  stamp.size = info.st_size;
  stamp.modifiedNs = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  return stamp;
}

bool statFile(const std::string& path, FileStamp& stamp) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return false;
  stamp = stampOf(info);
  return true;
}

/// The ELF class, byte order and machine of this process, which a library must share.
constexpr unsigned char kElfClass = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
constexpr unsigned char kElfData =
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
#if defined(__x86_64__)
constexpr unsigned kElfMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kElfMachine = EM_AARCH64;
#elif defined(__i386__)
constexpr unsigned kElfMachine = EM_386;
#elif defined(__arm__)
constexpr unsigned kElfMachine = EM_ARM;
#elif defined(__riscv)
constexpr unsigned kElfMachine = EM_RISCV;
#elif defined(__powerpc64__)
constexpr unsigned kElfMachine = EM_PPC64;
#elif defined(__s390x__)
constexpr unsigned kElfMachine = EM_S390;
#else
constexpr unsigned kElfMachine = EM_NONE;  // unknown here: the dynamic loader checks it
#endif

/// `offset + length`, or the largest value when that does not fit.
uint64_t endOf(uint64_t offset, uint64_t length) {
  return length > UINT64_MAX - offset ? UINT64_MAX : offset + length;
}

std::string truncatedAt(const std::string& what, uint64_t end, uint64_t size) {
  return "truncated: " + what + " ends at byte " + std::to_string(end) + ", the file has " +
         std::to_string(size);
}

/// Why the dynamic loader must not be given the ELF image in `fd` (`size` bytes), or "" when
/// everything it reads from the file is there. The loader maps each segment straight from the
/// file; a segment that ends past the end of a half-written copy maps pages with no bytes
/// behind them, and its first touch of them raises SIGBUS inside dlopen, which kills the edge
/// rather than failing the load (#5). Only what the loader reads is checked: the header, the
/// program header table and the file part of every segment (the loadable ones and those it
/// reads through them, such as the dynamic section).
std::string elfImageProblem(int fd, uint64_t size) {
  ElfW(Ehdr) header{};
  const size_t headerBytes = static_cast<size_t>(std::min<uint64_t>(size, sizeof(header)));
  if (::pread(fd, &header, headerBytes, 0) != static_cast<ssize_t>(headerBytes)) {
    return std::string("could not read the in-memory copy: ") + std::strerror(errno);
  }
  if (headerBytes < SELFMAG || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
    return "not a loadable library: invalid ELF header";
  }
  if (size < sizeof(header)) return truncatedAt("the ELF header", sizeof(header), size);
  if (header.e_ident[EI_CLASS] != kElfClass) {
    return std::string("not a loadable library: ") +
           (header.e_ident[EI_CLASS] == ELFCLASS32 ? "32" : "64") + "-bit ELF, this edge is " +
           (kElfClass == ELFCLASS32 ? "32" : "64") + "-bit";
  }
  if (header.e_ident[EI_DATA] != kElfData) {
    return "not a loadable library: the byte order is not this machine's";
  }
  if (header.e_type != ET_DYN) {
    return "not a loadable library: ELF type " + std::to_string(header.e_type) +
           " is not a shared object";
  }
  if (kElfMachine != EM_NONE && header.e_machine != kElfMachine) {
    return "not a loadable library: built for ELF machine " + std::to_string(header.e_machine) +
           ", this edge runs on " + std::to_string(kElfMachine);
  }
  if (header.e_phentsize != sizeof(ElfW(Phdr)) || header.e_phnum == 0 ||
      header.e_phnum == PN_XNUM) {
    return "not a loadable library: malformed program header table (" +
           std::to_string(header.e_phnum) + " entries of " + std::to_string(header.e_phentsize) +
           " bytes)";
  }

  // The program header table, then the file part of each segment it lists.
  const uint64_t tableEnd = endOf(header.e_phoff, uint64_t{header.e_phnum} * header.e_phentsize);
  if (tableEnd > size) return truncatedAt("the program header table", tableEnd, size);
  std::vector<ElfW(Phdr)> segments(header.e_phnum);
  const size_t tableBytes = segments.size() * sizeof(ElfW(Phdr));
  if (::pread(fd, segments.data(), tableBytes, static_cast<off_t>(header.e_phoff)) !=
      static_cast<ssize_t>(tableBytes)) {
    return std::string("could not read the in-memory copy: ") + std::strerror(errno);
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    const uint64_t end = endOf(segments[i].p_offset, segments[i].p_filesz);
    if (end > size) return truncatedAt("segment " + std::to_string(i), end, size);
  }
  return {};
}

/// A sealed in-memory copy of a plugin file (memfd), loaded through /proc/self/fd/N.
///
/// The dynamic loader knows a library by the name it was opened with. The descriptor stays
/// open while the library is loaded, so no other copy can get the same name meanwhile; and if
/// the loader keeps a library after it was released (a library marked "nodelete", or one with
/// unique symbols), the descriptor is kept open for the rest of the process, so that its name
/// is never handed to a newer copy.
class MemoryImage {
 public:
  MemoryImage() = default;
  MemoryImage(MemoryImage&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  MemoryImage& operator=(MemoryImage&& other) noexcept {
    if (this != &other) {
      closeNow();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  MemoryImage(const MemoryImage&) = delete;
  MemoryImage& operator=(const MemoryImage&) = delete;
  ~MemoryImage() { closeNow(); }

  /// Copies `file`; `stamp` receives the identity of the version that was copied.
  static MemoryImage copyOf(const std::string& file, FileStamp& stamp, std::string& error) {
    MemoryImage image;
    const int source = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (source < 0) {
      error = std::strerror(errno);
      return image;
    }
    struct stat info {};
    if (::fstat(source, &info) != 0) {
      error = std::strerror(errno);
      ::close(source);
      return image;
    }
    stamp = stampOf(info);

    // MFD_EXEC asks for an executable copy where vm.memfd_noexec would otherwise make it
    // non-executable (Linux 6.3 and later); older kernels refuse the flag, and do without it.
    const std::string name = "anm-plugin:" + std::filesystem::path(file).filename().string();
    int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING | kMemfdExec);
    if (fd < 0 && errno == EINVAL)
      fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
      error = std::string("could not create an in-memory copy: ") + std::strerror(errno);
      ::close(source);
      return image;
    }
    image.fd_ = fd;

    // Copy what the descriptor holds now; a writer still busy with the file changes its
    // stamp, and the next pass loads the finished file.
    char buffer[64 * 1024];
    for (;;) {
      const ssize_t got = ::read(source, buffer, sizeof(buffer));
      if (got == 0) break;
      if (got < 0) {
        if (errno == EINTR) continue;
        error = std::strerror(errno);
        ::close(source);
        image.closeNow();
        return image;
      }
      for (ssize_t done = 0; done < got;) {
        const ssize_t put = ::write(fd, buffer + done, static_cast<size_t>(got - done));
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) {
          error = std::string("could not copy into memory: ") + std::strerror(errno);
          ::close(source);
          image.closeNow();
          return image;
        }
        done += put;
      }
    }
    ::close(source);

    // Sealed, the copy can never change under the code mapped from it.
    ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return image;
  }

  bool valid() const { return fd_ >= 0; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

  /// Why the copy must not be handed to the dynamic loader, or "" (see elfImageProblem).
  std::string loaderProblem() const {
    struct stat info {};
    if (::fstat(fd_, &info) != 0) {
      return std::string("could not read the in-memory copy: ") + std::strerror(errno);
    }
    return elfImageProblem(fd_, static_cast<uint64_t>(info.st_size));
  }

  /// Called once the library was released: closes the copy unless the loader still holds it.
  void release() {
    if (fd_ < 0) return;
    void* still = ::dlopen(path().c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (still != nullptr) {
      ::dlclose(still);
      fd_ = -1;  // kept open on purpose, see the class comment
      return;
    }
    closeNow();
  }

 private:
  void closeNow() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
};

}  // namespace

/// A plugin library with its descriptor and state. Destroying it shuts the plugin down and
/// releases the library; the Registry makes sure that happens on its control thread only.
struct Registry::Loaded {
  Loaded() = default;
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;

  ~Loaded() {
    if (initialized && descriptor->shutdown != nullptr) {
      try {
        descriptor->shutdown(state);
      } catch (...) {
        hostLogger().warning("plugin hook failed provider=%s hook=shutdown reason=\"%s\"",
                             info.name, escapeQuoted(exceptionText(std::current_exception())));
      }
    }
    host.reset();
    if (library.is_loaded()) library.unload();
    image.release();
  }

  // NOTE: members are destroyed bottom-up after the body above; the library goes before the
  // in-memory file it was mapped from.
  MemoryImage image;
  boost::dll::shared_library library;
  const anm_plugin* descriptor = nullptr;
  std::unique_ptr<HostApi> host;
  void* state = nullptr;
  bool initialized = false;
  PluginInfo info;
};

/// The plugins offered at one moment, by provider name. Never changed once published.
struct Registry::Table {
  std::map<std::string, std::shared_ptr<const Loaded>, std::less<>> byProvider;
};

/// What the registry knows of one file of the directory.
struct Registry::FileState {
  FileStamp stamp;
  std::shared_ptr<const Loaded> plugin;  ///< loaded and initialized, offered or about to be
  std::string duplicateOf;  ///< refused because this provider came from an earlier file
};

/// State that only the thread changing the plugins touches, under `mutex`.
struct Registry::Control {
  std::mutex mutex;
  std::map<std::string, FileState> files;  ///< by absolute path, so in name order per directory
  /// Plugins no longer offered, kept until no call holds them, then shut down here.
  std::vector<std::shared_ptr<const Loaded>> retired;
  std::atomic<uint64_t> loadFailures{0};
};

namespace {

/// Loads `path` from a sealed in-memory copy and checks its descriptor, without running any
/// of its hooks but the entry function. Returns the plugin, or the reason it cannot be used in
/// `reason`; logs nothing (the caller decides how to report).
std::shared_ptr<Registry::Loaded> loadPlugin(const std::string& path, FileStamp& stamp,
                                             std::string& reason) {
  auto loaded = std::make_shared<Registry::Loaded>();

  // The copy is what runs: a file rewritten in place afterwards cannot change code that is
  // mapped, and a new version at the same path is a library of its own to the loader.
  std::string copyError;
  loaded->image = MemoryImage::copyOf(path, stamp, copyError);
  if (!loaded->image.valid()) {
    reason = "could not read the file: " + copyError;
    return nullptr;
  }

  // A copy caught half-written is refused here, before the loader maps it; the writer's next
  // change gives the file a new stamp, and the finished file is loaded then.
  reason = loaded->image.loaderProblem();
  if (!reason.empty()) return nullptr;

  // RTLD_NOW reports a missing dependency here rather than at the first webhook; RTLD_LOCAL
  // keeps one plugin's symbols from resolving another's.
  try {
    loaded->library.load(loaded->image.path(),
                         boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    // The loader's text starts with the name it was given, the in-memory copy's; the log line
    // names the file already, so only what follows is kept.
    std::string text = dlerrorText(e.what());
    const std::string copyName = loaded->image.path() + ": ";
    if (text.rfind(copyName, 0) == 0) text.erase(0, copyName.size());
    reason = "not a loadable library: " + replaceAll(text, loaded->image.path(), path);
    return nullptr;
  }
  if (!loaded->library.has(ANM_PLUGIN_ENTRY_SYMBOL)) {
    reason = "missing entry symbol " ANM_PLUGIN_ENTRY_SYMBOL;
    return nullptr;
  }

  // The entry function is the first plugin code that runs; it must not throw either.
  const anm_plugin* d = nullptr;
  try {
    d = loaded->library.get<const anm_plugin*()>(ANM_PLUGIN_ENTRY_SYMBOL)();
  } catch (...) {
    reason = "entry function threw an " + exceptionText(std::current_exception());
    return nullptr;
  }
  if (d == nullptr) {
    reason = "entry function returned NULL";
    return nullptr;
  }

  // Size and major version come before anything else: they say how to read the rest.
  if (d->struct_size < kVersionHeaderBytes) {
    reason = "descriptor struct_size " + std::to_string(d->struct_size) +
             " is smaller than its version header";
    return nullptr;
  }
  if (d->abi_major != ANM_ABI_MAJOR) {
    reason = "incompatible ABI major version: expected " + std::to_string(ANM_ABI_MAJOR) +
             ", found " + std::to_string(d->abi_major);
    return nullptr;
  }
  if (d->struct_size < kDescriptorBytesV1_0) {
    reason = "descriptor struct_size " + std::to_string(d->struct_size) + " is smaller than the " +
             std::to_string(kDescriptorBytesV1_0) + " bytes of an ABI 1.0 descriptor";
    return nullptr;
  }
  if (d->abi_minor > ANM_ABI_MINOR) {
    reason = "plugin needs ABI " + std::to_string(d->abi_major) + "." +
             std::to_string(d->abi_minor) + " but this edge offers " +
             std::to_string(ANM_ABI_MAJOR) + "." + std::to_string(ANM_ABI_MINOR);
    return nullptr;
  }

  // The name is what hooks refer to; it must be usable in URLs, logs and logger names.
  if (!isValidName(d->name)) {
    reason = "bad provider name \"" + copyCString(d->name, kMaxNameBytes + 1) +
             "\": must be lower-case [a-z0-9_-], 1 to 32 characters";
    return nullptr;
  }
  const std::string name(d->name);
  if (d->verify == nullptr) {
    reason = "provider " + name + " has no verify hook";
    return nullptr;
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
  return loaded;
}

/// Runs the plugin's init, once. False with `reason` when it failed; such a plugin is never
/// used and never shut down.
bool initializePlugin(Registry::Loaded& loaded, std::string& reason) {
  const anm_plugin* d = loaded.descriptor;
  if (d->init != nullptr) {
    char err[kErrorBytes] = {};
    anm_status status = ANM_ERR_INTERNAL;
    try {
      status = d->init(loaded.host->table(), &loaded.state, err, sizeof(err));
    } catch (...) {
      reason = "init threw an " + exceptionText(std::current_exception());
      return false;
    }
    err[sizeof(err) - 1] = '\0';
    if (status != ANM_OK) {
      const std::string message = errorText(err);
      reason = "init failed with status " + std::to_string(status) +
               (message.empty() ? std::string() : ": " + message);
      return false;
    }
  }
  loaded.initialized = true;
  return true;
}

void logLoaded(const PluginInfo& info) {
  hostLogger().information("loaded plugin provider=%s version=%s abi=%d.%d file=%s", info.name,
                           info.version, static_cast<int>(info.abiMajor),
                           static_cast<int>(info.abiMinor), info.file);
}

// The library files of `dir` with their stamps, in name order; `error` set when the directory
// cannot be read.
std::map<std::string, FileStamp> listLibraries(const std::string& dir, std::string& error) {
  std::map<std::string, FileStamp> files;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    error = "could not read directory: " + ec.message();
    return files;
  }
  for (const auto& entry : it) {
    std::error_code typeEc;
    if (!entry.is_regular_file(typeEc) || !looksLikeLibrary(entry.path())) continue;
    const std::string path = absolutePath(entry.path().string());
    FileStamp stamp;
    if (!statFile(path, stamp)) continue;  // gone since it was listed
    files.emplace(path, stamp);
  }
  return files;
}

}  // namespace

Registry::Registry()
    : table_(std::make_shared<const Table>()), control_(std::make_unique<Control>()) {}

Registry::~Registry() {
  // No call can be in flight any more: shut down in reverse name order, then whatever was
  // retired and not yet released.
  std::atomic_store(&table_, std::shared_ptr<const Table>());
  for (auto it = control_->files.rbegin(); it != control_->files.rend(); ++it) {
    it->second.plugin.reset();
  }
  control_->retired.clear();
}

std::shared_ptr<const Registry::Table> Registry::table() const { return std::atomic_load(&table_); }

std::vector<LoadFailure> Registry::loadDirectory(const std::string& dir) {
  return sync(dir).refused;
}

SyncResult Registry::sync(const std::string& dir) {
  Control& c = *control_;
  std::lock_guard<std::mutex> lock(c.mutex);
  SyncResult result;
  auto refuse = [&](const std::string& path, const std::string& reason, const std::string& kept) {
    hostLogger().warning("could not load plugin file=%s reason=\"%s\"%s", path,
                         escapeQuoted(reason), kept.empty() ? "" : " keeping_version=" + kept);
    result.refused.push_back({path, reason});
    c.loadFailures.fetch_add(1, std::memory_order_relaxed);
  };

  std::string listError;
  const std::map<std::string, FileStamp> present = listLibraries(dir, listError);
  if (!listError.empty()) {
    // A directory that cannot be read changes nothing: what was loaded stays offered.
    hostLogger().warning("could not load plugins dir=%s reason=\"%s\"", dir,
                         escapeQuoted(listError));
    result.refused.push_back({absolutePath(dir), listError});
    c.loadFailures.fetch_add(1, std::memory_order_relaxed);
    return result;
  }
  const std::string prefix = absolutePath(dir) + "/";
  std::shared_ptr<const Table> before = table();

  // Files of this directory that are gone take their plugins with them.
  for (auto it = c.files.begin(); it != c.files.end();) {
    const bool ours = it->first.rfind(prefix, 0) == 0;
    if (!ours || present.count(it->first) != 0) {
      ++it;
      continue;
    }
    if (it->second.plugin) c.retired.push_back(it->second.plugin);
    it = c.files.erase(it);
  }

  // Two rounds settle every case: the second only retries files refused for offering a
  // provider that an earlier file offered and no longer does.
  for (int round = 0; round < 2; ++round) {
    // New and changed files are opened (their init waits until they are known to be used);
    // a file refused for its provider is opened again once no other file offers it.
    std::map<std::string, std::shared_ptr<Loaded>> opened;
    for (const auto& [path, stamp] : present) {
      FileState& state = c.files[path];
      const bool changed = !(state.stamp == stamp);
      const bool retry =
          !changed && !state.duplicateOf.empty() &&
          std::none_of(c.files.begin(), c.files.end(), [&](const auto& other) {
            return other.second.plugin && other.second.plugin->info.name == state.duplicateOf;
          });
      if (!changed && !retry) continue;

      FileStamp openedStamp = stamp;
      std::string reason;
      auto plugin = loadPlugin(path, openedStamp, reason);
      state.stamp = openedStamp;
      state.duplicateOf.clear();
      if (!plugin) {
        // A refused new version leaves the version loaded before it offered.
        refuse(path, reason, state.plugin ? state.plugin->info.version : "");
        continue;
      }
      opened.emplace(path, std::move(plugin));
    }

    // One file per provider: the first in name order. Later files offering it are refused
    // before their init runs; the winner's init runs now.
    std::map<std::string, std::string, std::less<>> owner;
    for (auto& [path, state] : c.files) {
      auto pending = opened.find(path);
      const std::shared_ptr<const Loaded> current = state.plugin;
      const Loaded* candidate = pending != opened.end() ? pending->second.get() : current.get();
      if (candidate == nullptr) continue;
      const std::string name = candidate->info.name;

      const auto taken = owner.find(name);
      if (taken != owner.end()) {
        refuse(path, "provider " + name + " is already loaded from " + taken->second, "");
        if (current) c.retired.push_back(current);
        state.plugin.reset();
        state.duplicateOf = name;
        continue;
      }
      if (pending == opened.end()) {
        owner.emplace(name, path);
        continue;
      }

      std::string reason;
      if (!initializePlugin(*pending->second, reason)) {
        refuse(path, reason, current ? current->info.version : "");
        if (current && owner.count(current->info.name) == 0) {
          owner.emplace(current->info.name, path);
        } else if (current) {
          c.retired.push_back(current);
          state.plugin.reset();
        }
        continue;
      }
      if (current) c.retired.push_back(current);
      state.plugin = std::move(pending->second);
      owner.emplace(name, path);
    }

    const bool freed = std::any_of(c.files.begin(), c.files.end(), [&](const auto& entry) {
      return !entry.second.duplicateOf.empty() && owner.count(entry.second.duplicateOf) == 0;
    });
    if (!freed) break;
  }

  // Publish the new set, then say what changed against the one before.
  auto next = std::make_shared<Table>();
  for (const auto& [path, state] : c.files) {
    if (state.plugin) next->byProvider.emplace(state.plugin->info.name, state.plugin);
  }
  for (const auto& [name, plugin] : next->byProvider) {
    const auto old = before->byProvider.find(name);
    if (old != before->byProvider.end() && old->second == plugin) continue;
    logLoaded(plugin->info);
    result.loaded.push_back(plugin->info);
  }
  for (const auto& [name, plugin] : before->byProvider) {
    if (next->byProvider.count(name) != 0) continue;
    hostLogger().information("plugin removed provider=%s version=%s file=%s", name,
                             plugin->info.version, plugin->info.file);
    result.removed.push_back(plugin->info);
  }
  std::atomic_store(&table_, std::shared_ptr<const Table>(std::move(next)));
  for (const auto& [path, state] : c.files) {
    if (path.rfind(prefix, 0) == 0 && !state.plugin) ++result.notLoaded;
  }

  // Retired plugins that no call holds any more are shut down here, on this thread; the
  // others wait for a later pass (or the registry's end).
  before.reset();
  collectRetiredLocked();
  return result;
}

void Registry::collectRetired() {
  std::lock_guard<std::mutex> lock(control_->mutex);
  collectRetiredLocked();
}

void Registry::collectRetiredLocked() {
  auto& retired = control_->retired;
  retired.erase(std::remove_if(retired.begin(), retired.end(),
                               [](const auto& plugin) { return plugin.use_count() == 1; }),
                retired.end());
}

std::optional<LoadFailure> Registry::loadFile(const std::string& file) {
  Control& c = *control_;
  std::lock_guard<std::mutex> lock(c.mutex);
  const std::string path = absolutePath(file);
  auto refuse = [&](const std::string& reason) {
    hostLogger().warning("could not load plugin file=%s reason=\"%s\"", path, escapeQuoted(reason));
    c.loadFailures.fetch_add(1, std::memory_order_relaxed);
    return LoadFailure{path, reason};
  };

  // The provider must be free before the plugin's init runs.
  FileStamp stamp;
  std::string reason;
  auto plugin = loadPlugin(path, stamp, reason);
  if (!plugin) return refuse(reason);
  const std::shared_ptr<const Table> before = table();
  const auto taken = before->byProvider.find(plugin->info.name);
  if (taken != before->byProvider.end()) {
    return refuse("provider " + taken->first + " is already loaded from " +
                  taken->second->info.file);
  }
  if (!initializePlugin(*plugin, reason)) return refuse(reason);

  FileState& state = c.files[path];
  state.stamp = stamp;
  state.plugin = plugin;
  auto next = std::make_shared<Table>(*before);
  next->byProvider.emplace(plugin->info.name, plugin);
  std::atomic_store(&table_, std::shared_ptr<const Table>(std::move(next)));
  logLoaded(plugin->info);
  return std::nullopt;
}

std::vector<PluginInfo> Registry::list() const {
  const auto current = table();
  std::vector<PluginInfo> out;
  out.reserve(current->byProvider.size());
  for (const auto& [name, plugin] : current->byProvider) out.push_back(plugin->info);
  return out;
}

bool Registry::has(std::string_view provider) const { return find(provider) != nullptr; }

uint64_t Registry::loadFailures() const {
  return control_->loadFailures.load(std::memory_order_relaxed);
}

std::shared_ptr<const Registry::Loaded> Registry::find(std::string_view provider) const {
  const auto current = table();
  const auto it = current->byProvider.find(provider);
  if (it == current->byProvider.end()) return nullptr;
  return it->second;
}

std::string Registry::checkSettings(const store::HookRecord& hook) const {
  if (hook.provider.empty()) return {};

  // An unknown provider is answered with what could have been meant.
  const std::shared_ptr<const Loaded> plugin = find(hook.provider);
  if (plugin == nullptr) {
    std::vector<std::string> names;
    for (const auto& info : list()) names.push_back(info.name);
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
  // The plugin is held until the call returns, even if a reload replaces it meanwhile.
  const std::shared_ptr<const Loaded> plugin = find(hook.provider);
  if (plugin == nullptr) {
    Outcome outcome = internalOutcome("provider \"" + hook.provider + "\" is not loaded");
    outcome.providerUnavailable = true;
    return outcome;
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
