// cli/src/named_hooks.cpp: hook settings and the account's named hooks over the REST API.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/named_hooks.h"

#include <Poco/JSON/Array.h>
#include <Poco/URI.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "cli/src/command_support.h"
#include "cli/src/config_store.h"
#include "cli/src/event_output.h"
#include "cli/src/stream_event.h"

namespace anm::cli {

std::vector<OptionSpec> hookSettingSpecs() {
  return {{"provider"},           {"secret"},    {"secret-file"},
          {"option", true, true}, {"tolerance"}, {"standard-webhooks", false}};
}

bool parseHookSettings(const Args& args, HookSettings& settings, std::string& error) {
  settings.any = args.has("provider") || args.has("secret") || args.has("secret-file") ||
                 args.has("option") || args.has("tolerance") || args.has("standard-webhooks");
  if (args.value("tolerance") &&
      !parseInteger(*args.value("tolerance"), 0, 100LL * 365 * 24 * 3600, settings.tolerance)) {
    error = "--tolerance must be a whole number of seconds, 0 or more";
    return false;
  }
  if (args.has("secret") && args.has("secret-file")) {
    error = "give --secret or --secret-file, not both";
    return false;
  }
  for (const std::string& option : args.values("option")) {
    const size_t eq = option.find('=');
    if (eq == std::string::npos || eq == 0) {
      error = "--option must be KEY=VALUE, got '" + option + "'";
      return false;
    }
    settings.options.emplace_back(option.substr(0, eq), option.substr(eq + 1));
  }
  if (args.value("secret")) settings.secret = *args.value("secret");
  if (args.value("secret-file")) {
    std::ifstream in(*args.value("secret-file"), std::ios::binary);
    if (!in) {
      error = "could not read --secret-file " + *args.value("secret-file");
      return false;
    }
    std::ostringstream content;
    content << in.rdbuf();
    settings.secret = content.str();
    if (settings.secret.size() >= 2 &&
        settings.secret.compare(settings.secret.size() - 2, 2, "\r\n") == 0) {
      settings.secret.resize(settings.secret.size() - 2);
    } else if (!settings.secret.empty() && settings.secret.back() == '\n') {
      settings.secret.pop_back();
    }
    settings.secretIsBinary = !isValidUtf8(settings.secret);
  }

  // Every provider checks a signature with the secret: without one the edge would reject each
  // webhook as secret_missing. A secret without a provider would verify nothing at all.
  if (args.value("provider") && args.value("provider")->empty()) {
    error = "--provider needs a name (stripe, github, ...)";
    return false;
  }
  if (args.value("provider")) settings.provider = *args.value("provider");
  if (!settings.provider.empty() && settings.secret.empty()) {
    error = "--provider " + settings.provider + " needs --secret or --secret-file";
    return false;
  }
  if (settings.provider.empty() && (args.has("secret") || args.has("secret-file"))) {
    error =
        "--secret and --secret-file need --provider NAME: without a provider the hook checks no "
        "signature";
    return false;
  }
  settings.standardWebhooks = args.has("standard-webhooks");
  if (settings.standardWebhooks && !settings.provider.empty()) {
    error =
        "--standard-webhooks verifies with the hook's own signing secret; it cannot be combined "
        "with --provider";
    return false;
  }
  return true;
}

std::string hookCreateBody(const std::string& name, const HookSettings& settings) {
  Poco::JSON::Object request(Poco::JSON_PRESERVE_KEY_ORDER);
  if (!name.empty()) request.set("name", name);
  if (!settings.provider.empty()) request.set("provider", settings.provider);
  if (!settings.secret.empty()) {
    if (settings.secretIsBinary) {
      request.set("secret_base64", encodeBase64(settings.secret));
    } else {
      request.set("secret", settings.secret);
    }
  }
  if (settings.tolerance >= 0) {
    request.set("tolerance_s", static_cast<Poco::Int64>(settings.tolerance));
  }
  if (!settings.options.empty()) {
    Poco::JSON::Object optionObject(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& [key, value] : settings.options) optionObject.set(key, value);
    request.set("options", optionObject);
  }
  if (settings.standardWebhooks) request.set("standard_webhooks", true);
  std::ostringstream body;
  request.stringify(body);
  return body.str();
}

Poco::JSON::Object::Ptr findHook(MemberSession& session, ApiClient& api,
                                 const std::string& nameOrId) {
  // By name first: that is what people type, and it is one request.
  std::string query;
  Poco::URI::encode(nameOrId, "&=+#?/%; ", query);
  const ApiResponse listed = sendAsMember(session, api, "GET", "/api/v1/hooks?name=" + query);
  if (listed.status != 200) {
    if (!isJsonObject(listed.body)) throw std::runtime_error(notJsonMessage(listed.status));
    throw std::runtime_error("could not list hooks: edge answered " +
                             std::to_string(listed.status) + ": " + listed.errorText());
  }
  const Poco::JSON::Array::Ptr hooks = parseObject(listed)->getArray("hooks");
  if (!hooks) throw std::runtime_error("could not list hooks: the answer has no hooks array");
  for (size_t i = 0; i < hooks->size(); ++i) {
    const Poco::JSON::Object::Ptr hook = hooks->getObject(static_cast<unsigned>(i));
    if (!hook.isNull() && getString(*hook, "name") == nameOrId) return hook;
  }

  // Then as an id of the account's (the JWT just worked, so a 404 means no such hook).
  if (!isValidHookId(nameOrId)) return nullptr;
  const ApiResponse byId =
      sendAsMember(session, api, "GET", "/api/v1/hooks/" + encodeSegment(nameOrId));
  if (byId.status == 404) return nullptr;
  if (byId.status != 200) {
    if (!isJsonObject(byId.body)) throw std::runtime_error(notJsonMessage(byId.status));
    throw std::runtime_error("could not read hook " + nameOrId + ": edge answered " +
                             std::to_string(byId.status) + ": " + byId.errorText());
  }
  return parseObject(byId);
}

Poco::JSON::Object::Ptr createNamedHook(MemberSession& session, ApiClient& api,
                                        const std::string& name, const HookSettings& settings) {
  const ApiResponse response =
      sendAsMember(session, api, "POST", "/api/v1/hooks", hookCreateBody(name, settings));
  if (!isJsonObject(response.body)) throw std::runtime_error(notJsonMessage(response.status));
  if (response.status != 201 && response.status != 200) {
    throw std::runtime_error("could not create hook " + name + ": edge answered " +
                             std::to_string(response.status) + ": " + response.errorText());
  }
  const Poco::JSON::Object::Ptr hook = parseObject(response);
  if (!isValidHookId(getString(*hook, "id"))) {
    throw std::runtime_error("could not create hook " + name +
                             ": the edge's answer has no valid id");
  }
  return hook;
}

}  // namespace anm::cli
