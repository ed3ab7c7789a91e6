// core/edge/admin.cpp: `anonymily-edge admin`: accounts, tokens and keys of an edge's store.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/admin.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/FormattingChannel.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/Timestamp.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/edge/auth.h"
#include "core/edge/bootstrap.h"
#include "core/edge/config.h"
#include "core/edge/secrets.h"
#include "core/store/mysql_store.h"
#include "core/store/store.h"

namespace anm::edge {
namespace {

/// A command line that does not parse; exit 2 with the message and a pointer to the help.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A refusal that is not a malfunction (unknown account, taken name); exit 1.
class Refused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr char kUsage[] =
    "usage: anonymily-edge admin [--config FILE] [--data-dir DIR] [--store URL] [--json] "
    "COMMAND\n"
    "commands:\n"
    "  accounts create NAME [--plan free|pro] [--member NAME]   new account, prints its token\n"
    "  accounts list\n"
    "  accounts disable NAME | accounts enable NAME\n"
    "  accounts plan NAME free|pro\n"
    "  tokens create ACCOUNT [--member NAME] [--name N]        a new token (recovery)\n"
    "  keys status                                             keys and records per key\n"
    "  keys rotate [--key ID]                                  encrypt everything anew\n"
    "The store and keys are those the edge uses with the same settings; the edge may be\n"
    "running. Exit codes: 0 done, 1 refused, 2 usage, 78 configuration.\n";

// Names of accounts and members: the same rule as the API's.
constexpr size_t kMaxNameBytes = 64;
// Waiting this long after a switch lets every running edge (rereading every
// kKeyReloadInterval) move to the new key before the last records under the old one are
// re-encrypted.
constexpr std::chrono::milliseconds kSwitchWait = kKeyReloadInterval * 2 + std::chrono::seconds(1);

struct CommandLine {
  std::string configFile;
  std::map<std::string, std::string> overrides;  ///< config keys from --data-dir, --store
  std::map<std::string, std::string> flags;      ///< command options: plan, member, name, key
  std::vector<std::string> words;
  bool json = false;
  bool help = false;
};

CommandLine parseCommandLine(const std::vector<std::string>& args) {
  static const std::set<std::string> kValued = {"config", "data-dir", "store", "plan",
                                                "member", "name",     "key"};
  CommandLine line;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      line.help = true;
      continue;
    }
    if (arg == "--json") {
      line.json = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      line.words.push_back(arg);
      continue;
    }

    // --name VALUE or --name=VALUE.
    std::string name = arg.substr(2);
    std::string value;
    const auto equals = name.find('=');
    if (equals != std::string::npos) {
      value = name.substr(equals + 1);
      name.resize(equals);
    } else if (kValued.count(name) != 0) {
      if (i + 1 >= args.size()) throw UsageError("option --" + name + " needs a value");
      value = args[++i];
    }
    if (kValued.count(name) == 0) throw UsageError("unknown option --" + name);
    if (name == "config") {
      line.configFile = value;
    } else if (name == "data-dir") {
      line.overrides["data_dir"] = value;
    } else if (name == "store") {
      line.overrides["store"] = value;
    } else {
      if (line.flags.count(name) != 0) throw UsageError("option --" + name + " given twice");
      line.flags[name] = value;
    }
  }
  return line;
}

bool validName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool validTokenName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (const char c : name) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string planName(store::Plan plan) { return plan == store::Plan::kPro ? "pro" : "free"; }

store::Plan parsePlan(const std::string& text) {
  if (text == "free") return store::Plan::kFree;
  if (text == "pro") return store::Plan::kPro;
  throw UsageError("unknown plan " + text + " (free or pro)");
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// "1 record", "3 records".
std::string countOf(int64_t count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

std::string isoTime(int64_t ms) {
  return Poco::DateTimeFormatter::format(Poco::Timestamp(ms * 1000), "%Y-%m-%dT%H:%M:%SZ");
}

std::string osUser() {
  if (const passwd* entry = ::getpwuid(::geteuid())) return entry->pw_name;
  return "uid" + std::to_string(::geteuid());
}

std::string exeDir() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

Poco::JSON::Object::Ptr accountJson(const store::AccountRecord& account) {
  Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
  json->set("id", account.id);
  json->set("name", account.name);
  json->set("plan", planName(account.plan));
  json->set("disabled", account.disabled);
  json->set("created_at_ms", account.createdAtMs);
  return json;
}

Poco::JSON::Object::Ptr memberJson(const store::MemberRecord& member) {
  Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
  json->set("id", member.id);
  json->set("name", member.name);
  json->set("owner", member.owner);
  return json;
}

Poco::JSON::Object::Ptr tokenJson(const store::TokenRecord& token, const std::string& text) {
  Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
  json->set("id", token.id);
  json->set("name", token.name);
  json->set("member", token.memberId);
  json->set("token", text);
  return json;
}

/// One admin invocation: the opened store and keys, and the command to run on them.
class Admin {
 public:
  Admin(CommandLine line, std::ostream& out) : line_(std::move(line)), out_(out) {}

  int run() {
    const auto& w = line_.words;
    if (w.empty()) throw UsageError("no command given");
    const std::string command = w[0] + (w.size() > 1 ? " " + w[1] : "");
    if (command == "accounts create") return accountsCreate();
    if (command == "accounts list") return accountsList();
    if (command == "accounts disable") return accountsSetDisabled(true);
    if (command == "accounts enable") return accountsSetDisabled(false);
    if (command == "accounts plan") return accountsPlan();
    if (command == "tokens create") return tokensCreate();
    if (command == "keys status") return keysStatus();
    if (command == "keys rotate") return keysRotate();
    throw UsageError("unknown command " + command);
  }

 private:
  // Takes exactly `count` words after the command's two, and only the named options.
  void expect(size_t count, std::initializer_list<const char*> allowed) {
    if (line_.words.size() < 2 + count) throw UsageError("missing argument to " + commandName());
    if (line_.words.size() > 2 + count) {
      throw UsageError("unexpected argument " + line_.words[2 + count]);
    }
    for (const auto& [flag, value] : line_.flags) {
      bool ok = false;
      for (const char* name : allowed) ok = ok || flag == name;
      if (!ok) throw UsageError("option --" + flag + " does not apply to " + commandName());
    }
  }

  std::string commandName() const { return line_.words[0] + " " + line_.words[1]; }

  std::string flag(const std::string& name, const std::string& fallback) const {
    const auto it = line_.flags.find(name);
    return it == line_.flags.end() ? fallback : it->second;
  }

  // The settings as the edge would read them; the store must exist already.
  void open() {
    ConfigValues values;
    if (!line_.configFile.empty()) values = readConfigFile(line_.configFile);
    for (const auto& [key, value] : line_.overrides) values[key] = value;
    config_ = parseConfig(values, exeDir(), ConfigUse::kAdmin);

    // A mistyped --data-dir must not grow a new empty store with keys of its own.
    if (config_.storeKind == StoreKind::kSqlite && !std::filesystem::exists(config_.sqlitePath)) {
      throw ConfigError("no store at " + config_.sqlitePath +
                        ": start the edge once to create it, or check --data-dir and --store");
    }
    keys_ = loadKeys(config_, false);
    source_ = keySource(config_);

    // No data-dir lock: the edge may be running; SQLite in WAL mode lets both work at once.
    try {
      if (config_.storeKind == StoreKind::kMySql) {
        store::MySqlOptions options = config_.mysql;
        options.keys = keys_;
        store_ = store::MySqlStore::open(options);
      } else {
        store_ = store::openSqliteStore(config_.sqlitePath, keys_);
      }
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      throw Refused("could not open store " + config_.store + ": " + e.what());
    }
    alignActiveKey(*store_, *keys_, config_);
  }

  void audit(const std::string& accountId, const std::string& action, const std::string& detail) {
    store::AuditRecord entry;
    entry.atMs = nowMs();
    entry.accountId = accountId;
    entry.actor = "admin:" + osUser();
    entry.action = action;
    entry.detail = detail;
    entry.remote = "local";
    store_->appendAudit(entry);
  }

  void printJson(const Poco::JSON::Object::Ptr& json) {
    json->stringify(out_);
    out_ << "\n";
  }

  store::AccountRecord requireAccount(const std::string& name) {
    auto account = store_->findAccountByName(name);
    if (!account) throw Refused("no account named " + name);
    return *account;
  }

  // A new token for a member, shown once.
  std::pair<store::TokenRecord, std::string> issueToken(const store::AccountRecord& account,
                                                        const store::MemberRecord& member,
                                                        const std::string& name) {
    const std::string text = newPersonalToken();
    store::TokenRecord token;
    token.id = newRecordId("tok_");
    token.memberId = member.id;
    token.accountId = account.id;
    token.name = name;
    token.hash = sha256Hex(text);
    token.createdAtMs = nowMs();
    store_->createToken(token);
    audit(account.id, "token.create",
          "token=" + token.id + " member=" + member.id + " name=" + name);
    return {token, text};
  }

  int accountsCreate() {
    expect(1, {"plan", "member"});
    const std::string name = line_.words[2];
    const std::string memberName = flag("member", kOwnerName);
    if (!validName(name)) throw UsageError("account names are 1..64 of a-z 0-9 - _: " + name);
    if (!validName(memberName)) {
      throw UsageError("member names are 1..64 of a-z 0-9 - _: " + memberName);
    }
    const store::Plan plan = parsePlan(flag("plan", "free"));
    open();

    // The account, its owner and the owner's first token.
    store::AccountRecord account;
    account.id = newRecordId("acc_");
    account.name = name;
    account.plan = plan;
    account.createdAtMs = nowMs();
    if (store_->findAccountByName(name)) throw Refused("an account named " + name + " exists");
    try {
      store_->createAccount(account);
    } catch (const store::ConflictError&) {
      throw Refused("an account named " + name + " exists");
    }
    store::MemberRecord member;
    member.id = newRecordId("mem_");
    member.accountId = account.id;
    member.name = memberName;
    member.owner = true;
    member.createdAtMs = account.createdAtMs;
    store_->createMember(member);
    audit(account.id, "account.create",
          "name=" + name + " plan=" + planName(plan) + " member=" + member.id);
    const auto [token, text] = issueToken(account, member, "initial");

    if (line_.json) {
      Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
      json->set("account", accountJson(account));
      json->set("member", memberJson(member));
      json->set("token", tokenJson(token, text));
      printJson(json);
      return kAdminOk;
    }
    out_ << "created account " << name << " (" << account.id << ", plan " << planName(plan)
         << ") with owner " << memberName << " (" << member.id << ")\n"
         << "personal access token " << token.id << " for " << memberName
         << "; it is shown only now, keep it safe:\n"
         << text << "\n";
    return kAdminOk;
  }

  int accountsList() {
    expect(0, {});
    open();
    const auto accounts = store_->listAccounts();
    if (line_.json) {
      Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
      for (const auto& account : accounts) list->add(accountJson(account));
      Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
      json->set("accounts", list);
      printJson(json);
      return kAdminOk;
    }
    if (accounts.empty()) {
      out_ << "no accounts\n";
      return kAdminOk;
    }
    size_t width = 4;
    for (const auto& account : accounts) width = std::max(width, account.name.size());
    out_ << std::left << std::setw(static_cast<int>(width + 2)) << "NAME" << std::setw(6) << "PLAN"
         << std::setw(10) << "STATUS" << std::setw(32) << "ID"
         << "CREATED\n";
    for (const auto& account : accounts) {
      out_ << std::left << std::setw(static_cast<int>(width + 2)) << account.name << std::setw(6)
           << planName(account.plan) << std::setw(10) << (account.disabled ? "disabled" : "enabled")
           << std::setw(32) << account.id << isoTime(account.createdAtMs) << "\n";
    }
    return kAdminOk;
  }

  int accountsSetDisabled(bool disabled) {
    expect(1, {});
    open();
    store::AccountRecord account = requireAccount(line_.words[2]);
    const std::string state = disabled ? "disabled" : "enabled";
    const bool changed = account.disabled != disabled;
    if (changed) {
      account.disabled = disabled;
      if (!store_->updateAccount(account)) throw Refused("no account named " + account.name);
      audit(account.id, disabled ? "account.disable" : "account.enable", "name=" + account.name);
    }
    if (line_.json) {
      Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
      json->set("account", accountJson(account));
      json->set("changed", changed);
      printJson(json);
      return kAdminOk;
    }
    out_ << "account " << account.name << (changed ? " " : " was already ") << state
         << (changed && disabled ? ": its members can no longer sign in" : "") << "\n";
    return kAdminOk;
  }

  int accountsPlan() {
    expect(2, {});
    const store::Plan plan = parsePlan(line_.words[3]);
    open();
    store::AccountRecord account = requireAccount(line_.words[2]);
    const store::Plan before = account.plan;
    const bool changed = before != plan;
    if (changed) {
      account.plan = plan;
      if (!store_->updateAccount(account)) throw Refused("no account named " + account.name);
      audit(account.id, "account.plan",
            "name=" + account.name + " from=" + planName(before) + " to=" + planName(plan));
    }
    if (line_.json) {
      Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
      json->set("account", accountJson(account));
      json->set("changed", changed);
      printJson(json);
      return kAdminOk;
    }
    out_ << "account " << account.name << (changed ? " is now on the " : " is already on the ")
         << planName(plan) << " plan\n";
    return kAdminOk;
  }

  int tokensCreate() {
    expect(1, {"member", "name"});
    const std::string tokenName = flag("name", "recovery");
    if (!validTokenName(tokenName)) {
      throw UsageError("token names are 1..64 printable characters: " + tokenName);
    }
    open();
    const store::AccountRecord account = requireAccount(line_.words[2]);

    // The named member, else the owner.
    const auto members = store_->listMembers(account.id);
    const store::MemberRecord* member = nullptr;
    const auto wanted = line_.flags.find("member");
    for (const auto& candidate : members) {
      const bool match =
          wanted == line_.flags.end() ? candidate.owner : candidate.name == wanted->second;
      if (match) {
        member = &candidate;
        break;
      }
    }
    if (member == nullptr) {
      throw Refused(wanted == line_.flags.end()
                        ? "account " + account.name + " has no owner"
                        : "account " + account.name + " has no member named " + wanted->second);
    }
    const auto [token, text] = issueToken(account, *member, tokenName);

    if (line_.json) {
      Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
      json->set("account", accountJson(account));
      json->set("member", memberJson(*member));
      json->set("token", tokenJson(token, text));
      printJson(json);
      return kAdminOk;
    }
    out_ << "personal access token " << token.id << " (" << tokenName << ") for " << member->name
         << " of account " << account.name << "; it is shown only now, keep it safe:\n"
         << text << "\n";
    return kAdminOk;
  }

  // Records per key id, with every key of the ring listed even when it protects nothing.
  std::vector<store::KeyUsage> usageWithRing() {
    auto usage = store_->keyUsage();
    for (const auto& key : keys_->ring()->keys()) {
      bool listed = false;
      for (const auto& entry : usage) listed = listed || entry.keyId == key.id;
      if (!listed) usage.push_back({key.id, 0});
    }
    return usage;
  }

  int keysStatus() {
    expect(0, {});
    open();
    const auto ring = keys_->ring();
    const std::string active = ring->active().id;
    const auto usage = usageWithRing();

    if (line_.json) {
      Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
      for (const auto& entry : usage) {
        Poco::JSON::Object::Ptr key = new Poco::JSON::Object;
        key->set("id", entry.keyId);
        key->set("active", entry.keyId == active);
        key->set("in_ring", ring->find(entry.keyId) != nullptr);
        key->set("records", entry.records);
        list->add(key);
      }
      Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
      json->set("source", source_.describe());
      json->set("active", active);
      json->set("keys", list);
      printJson(json);
      return kAdminOk;
    }
    out_ << "keys from " << source_.describe() << "\n"
         << "active key: " << active << "\n";
    size_t width = 3;
    for (const auto& entry : usage) width = std::max(width, entry.keyId.size());
    out_ << std::left << std::setw(static_cast<int>(width + 2)) << "KEY" << std::setw(8) << "ACTIVE"
         << std::setw(9) << "IN RING"
         << "RECORDS\n";
    for (const auto& entry : usage) {
      out_ << std::left << std::setw(static_cast<int>(width + 2)) << entry.keyId << std::setw(8)
           << (entry.keyId == active ? "yes" : "") << std::setw(9)
           << (ring->find(entry.keyId) ? "yes" : "MISSING") << entry.records << "\n";
    }
    return kAdminOk;
  }

  // A key id of the form k<N> that the ring does not use yet.
  static std::string nextKeyId(const crypto::KeyRing& ring) {
    for (size_t n = ring.keys().size() + 1;; ++n) {
      const std::string id = "k" + std::to_string(n);
      if (ring.find(id) == nullptr) return id;
    }
  }

  // Appends a new key to the key file (whole file rewritten with a rename) and reloads it.
  crypto::KeyRing appendKey(const std::string& id) {
    std::ifstream in(source_.path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    std::string contents = text.str();
    if (!in) throw Refused("could not read " + source_.path);
    if (!contents.empty() && contents.back() != '\n') contents += "\n";
    std::string line = crypto::KeyRing::newKeyLine(id);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    contents += line + "\n";
    try {
      crypto::KeyRing::writeFile(source_.path, contents);
      return crypto::KeyRing::loadFile(source_.path);
    } catch (const crypto::KeyError& e) {
      throw ConfigError(e.what());
    }
  }

  int keysRotate() {
    expect(0, {"key"});
    open();
    const bool quiet = line_.json;
    crypto::KeyRing ring = *keys_->ring();
    const std::string from = ring.active().id;
    const auto given = line_.flags.find("key");

    // Which key everything goes under: the one named, the one an interrupted rotation chose,
    // or a new one in the key file.
    std::string target;
    if (given != line_.flags.end()) {
      target = given->second;
      if (ring.find(target) == nullptr) {
        throw Refused("key " + target + " is not among the keys from " + source_.describe() + " (" +
                      "add it there first, on every edge)");
      }
    } else if (!source_.isFile()) {
      throw UsageError("the keys come from the " + source_.describe() +
                       ": add the new key to it on every edge, then run keys rotate --key ID");
    } else {
      bool leftovers = false;
      for (const auto& entry : store_->keyUsage()) {
        leftovers = leftovers || (entry.keyId != from && entry.records > 0);
      }
      const std::string last = ring.keys().back().id;
      if (leftovers) {
        target = from;
        if (!quiet) out_ << "resuming the rotation to key " << target << "\n";
      } else if (last != from) {
        target = last;
        if (!quiet) out_ << "using key " << target << ", added to the key file earlier\n";
      } else {
        target = nextKeyId(ring);
        ring = appendKey(target);
        ring.setActive(from);
        keys_->replace(ring);
        if (!quiet) out_ << "added key " << target << " to " << source_.path << "\n";
      }
    }

    // Switch: the check first (so edges can verify the key), then the active id, sealed under
    // the new key itself.
    if (target != from) {
      const crypto::Key& key = *ring.find(target);
      const std::string checkName = kKeyCheckSettingPrefix + target;
      const auto check = store_->getSetting(checkName);
      if (check && !keyCheckMatches(key, *check)) {
        throw ConfigError("key " + target + " from " + source_.describe() +
                          " is not the key the store knew under that id; choose another id");
      }
      if (!check) store_->putSettingIfAbsent(checkName, keyCheckValue(key));
      ring.setActive(target);
      keys_->replace(ring);
      store_->setSetting(kActiveKeySetting, target);
      audit(operatorAccountId(*store_), "keys.rotate", "from=" + from + " to=" + target);
      if (!quiet) {
        out_ << "key " << target << " is active; waiting "
             << std::chrono::duration_cast<std::chrono::seconds>(kSwitchWait).count()
             << " s for running edges to switch to it\n"
             << std::flush;
      }
      std::this_thread::sleep_for(kSwitchWait);
    }

    // Everything not under the target yet, in batches, each record in one statement.
    int64_t total = 0;
    for (;;) {
      const size_t done = store_->reencryptBatch(kRotateBatch);
      if (done == 0) break;
      total += static_cast<int64_t>(done);
      if (!quiet) out_ << "re-encrypted " << total << " records\n" << std::flush;
    }
    const bool nothing = target == from && total == 0;
    if (target == from && total > 0) {
      audit(operatorAccountId(*store_), "keys.rotate",
            "resumed to=" + target + " records=" + std::to_string(total));
    }

    // What is left under other keys, by cause: records that fail authentication stay where
    // they are whatever is run again; records under a key the ring lacks need that key back;
    // the rest are most likely from an edge without the new key, still writing under an old one.
    const store::ReencryptFailures failed = store_->reencryptFailures();
    int64_t left = 0;
    int64_t lacking = 0;
    std::string others;
    std::string lackedKeys;
    for (const auto& entry : store_->keyUsage()) {
      if (entry.keyId == target || entry.records == 0) continue;
      left += entry.records;
      if (!entry.keyId.empty() && ring.find(entry.keyId) == nullptr) {
        lacking += entry.records;
        lackedKeys += (lackedKeys.empty() ? "" : ", ") + entry.keyId;
        continue;
      }
      others += (others.empty() ? "" : ", ") + entry.keyId;
    }
    const int64_t unreadable = std::min(failed.records, left - lacking);
    const int64_t switching = left - lacking - unreadable;
    if (line_.json) {
      Poco::JSON::Object::Ptr json = new Poco::JSON::Object;
      json->set("from", from);
      json->set("active", target);
      json->set("reencrypted", total);
      json->set("left", left);
      json->set("failed_authentication", unreadable);
      Poco::JSON::Array::Ptr examples = new Poco::JSON::Array;
      for (const auto& record : failed.examples) examples->add(record);
      json->set("failed_examples", examples);
      json->set("under_missing_keys", lacking);
      json->set("nothing_to_do", nothing);
      printJson(json);
      return left == 0 ? kAdminOk : kAdminRefused;
    }
    if (unreadable > 0) {
      out_ << countOf(unreadable, "record") << " could not be re-encrypted because "
           << (unreadable == 1 ? "it fails" : "they fail")
           << " authentication (changed or corrupt in the store): ";
      for (size_t i = 0; i < failed.examples.size(); ++i) {
        out_ << (i > 0 ? ", " : "") << failed.examples[i];
      }
      if (failed.records > static_cast<int64_t>(failed.examples.size())) out_ << ", ...";
      out_ << "; " << (unreadable == 1 ? "it stays" : "they stay")
           << " under the old key and cannot be read with any key: restore "
           << (unreadable == 1 ? "it" : "them") << " from a backup or delete "
           << (unreadable == 1 ? "it" : "them") << " (stderr says why each failed)\n";
    }
    if (lacking > 0) {
      out_ << countOf(lacking, "record") << (lacking == 1 ? " is" : " are") << " under "
           << lackedKeys << ", which " << source_.describe()
           << " lacks: add the key back and run keys rotate again\n";
    }
    if (switching > 0) {
      out_ << countOf(switching, "record") << (switching == 1 ? " is" : " are") << " still under "
           << others << ": some edge lacks key " << target
           << " or has not switched; give every edge the key and run keys rotate again\n";
    }
    if (left > 0) return kAdminRefused;
    if (nothing) {
      out_ << "nothing to do: every record is under key " << target << " already\n";
      return kAdminOk;
    }
    out_ << "every record is under key " << target;
    if (from != target) {
      out_ << "; once every edge has switched (keys status), key " << from
           << " may be removed from " << source_.describe();
    }
    out_ << "\n";
    return kAdminOk;
  }

  CommandLine line_;
  std::ostream& out_;
  EdgeConfig config_;
  KeySource source_;
  std::shared_ptr<crypto::KeyHolder> keys_;
  std::unique_ptr<store::Store> store_;
};

}  // namespace

int runAdmin(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    CommandLine line = parseCommandLine(args);
    if (line.help) {
      out << kUsage;
      return kAdminOk;
    }
    Admin admin(std::move(line), out);
    return admin.run();
  } catch (const UsageError& e) {
    err << "anonymily-edge admin: " << e.what() << "\n" << kUsage;
    return kAdminUsage;
  } catch (const ConfigError& e) {
    err << "anonymily-edge admin: invalid configuration: " << e.what() << "\n";
    return kAdminConfig;
  } catch (const Refused& e) {
    err << "anonymily-edge admin: " << e.what() << "\n";
    return kAdminRefused;
  } catch (const std::exception& e) {
    err << "anonymily-edge admin: " << e.what() << "\n";
    return kAdminRefused;
  }
}

int runAdmin(const std::vector<std::string>& args) {
  // The store's own log lines go to stderr, the command's answer alone to stdout.
  Poco::AutoPtr<Poco::PatternFormatter> formatter(
      new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%i %p %s: %t"));
  Poco::AutoPtr<Poco::FormattingChannel> channel(
      new Poco::FormattingChannel(formatter, new Poco::ConsoleChannel(std::cerr)));
  Poco::Logger::root().setChannel(channel);
  Poco::Logger::setLevel("", Poco::Message::PRIO_WARNING);
  return runAdmin(args, std::cout, std::cerr);
}

}  // namespace anm::edge
