// tests/integration/edge_fixture.h: what every in-process edge test starts from.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "core/edge/config.h"

namespace anm::test {

/// An edge on 127.0.0.1 with a port the kernel picks, its SQLite store in `dataDir` and the
/// test plugins. Tests change what they check on top of this.
inline edge::EdgeConfig loopbackEdgeConfig(const std::string& dataDir) {
  edge::EdgeConfig config;
  config.listenHost = "127.0.0.1";
  config.listenPort = 0;
  config.dataDir = dataDir;
  config.sqlitePath = dataDir + "/anonymily.db";
  config.store = "sqlite:" + config.sqlitePath;
  config.pluginDir = ANM_TEST_PLUGIN_DIR;
  config.pluginDirGiven = true;
  return config;
}

}  // namespace anm::test
