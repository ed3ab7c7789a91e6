// cli/src/named_hooks.h: hook settings from the command line, and the named hooks of the
// signed-in member's account (find by name or id, create).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/JSON/Object.h>

#include <string>
#include <utility>
#include <vector>

#include "cli/src/api_client.h"
#include "cli/src/args.h"
#include "cli/src/session.h"

namespace anm::cli {

/// How a new hook verifies its senders: --provider, --secret/--secret-file, --option,
/// --tolerance, --standard-webhooks.
struct HookSettings {
  std::string provider;         ///< "" for none
  std::string secret;           ///< the provider's secret, "" for none
  bool secretIsBinary = false;  ///< not UTF-8: sent as secret_base64
  long long tolerance = -1;     ///< -1: the plugin's default
  std::vector<std::pair<std::string, std::string>> options;
  bool standardWebhooks = false;

  /// Whether any of the options that configure a new hook was given.
  bool any = false;
};

/// The option specs of HookSettings, for a command's parser.
std::vector<OptionSpec> hookSettingSpecs();

/// Reads and checks the settings (a provider needs a secret, a secret needs a provider,
/// --standard-webhooks excludes --provider). False with `error` set to a usage message.
bool parseHookSettings(const Args& args, HookSettings& settings, std::string& error);

/// The JSON body of POST /api/v1/hooks; `name` "" for an anonymous hook.
std::string hookCreateBody(const std::string& name, const HookSettings& settings);

/// The account's hook named `nameOrId`, else the account's hook with that id, else null.
/// Throws SessionError (sign-in refused), NetError, or std::runtime_error for another answer.
Poco::JSON::Object::Ptr findHook(MemberSession& session, ApiClient& api,
                                 const std::string& nameOrId);

/// Creates the named hook (201). Throws std::runtime_error with the edge's reason when refused
/// (a plan limit, a taken name, bad settings), SessionError or NetError.
Poco::JSON::Object::Ptr createNamedHook(MemberSession& session, ApiClient& api,
                                        const std::string& name, const HookSettings& settings);

}  // namespace anm::cli
