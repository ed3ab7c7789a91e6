// tests/plugins/plugins_load_test.cpp: every built-in provider module loads from the plugin dir.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "anonymily/plugin.h"
#include "core/plugin/registry.h"

namespace anm::plugin {
namespace {

const std::vector<std::string> kProviders = {"github", "razorpay", "shopify", "slack", "stripe"};

TEST(PluginsLoadTest, EveryBuiltInProviderLoadsFromThePluginDirectory) {
  Registry registry;

  std::vector<LoadFailure> failures = registry.loadDirectory(ANM_TEST_PLUGIN_DIR);

  // Other modules may share the directory; none of ours may be among the refused ones.
  for (const LoadFailure& failure : failures) {
    for (const std::string& provider : kProviders) {
      EXPECT_EQ(failure.file.find("anm-" + provider + "."), std::string::npos)
          << failure.file << ": " << failure.reason;
    }
  }
  std::vector<PluginInfo> listed = registry.list();
  for (const std::string& provider : kProviders) {
    EXPECT_TRUE(registry.has(provider)) << provider;
    auto it = std::find_if(listed.begin(), listed.end(),
                           [&](const PluginInfo& p) { return p.name == provider; });
    ASSERT_NE(it, listed.end()) << provider;
    EXPECT_EQ(it->abiMajor, ANM_ABI_MAJOR) << provider;
    EXPECT_EQ(it->abiMinor, 0) << provider;
    EXPECT_EQ(it->version, "1.0.0") << provider;
    EXPECT_FALSE(it->summary.empty()) << provider;
    EXPECT_NE(it->file.find("anm-" + provider + ".so"), std::string::npos) << it->file;
  }
}

}  // namespace
}  // namespace anm::plugin
