// core/store/migration.h: one numbered step of a backend's schema.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <vector>

namespace anm::store {

/// Work on stored rows that a step does in the backend's code after its statements, because SQL
/// cannot do it (sealing needs the key ring).
enum class RowWork {
  kNone,
  /// Seals the summary fields (sealing.h) of every event sealed before schema 3.
  kSealSummaryFields,
};

/// Steps are applied in version order, each once, and recorded in the database's
/// schema_migrations table; a step is never edited after release: a change is a new step. A
/// database recording a version newer than the build's newest step is refused.
struct Migration {
  int64_t version;
  const char* description;
  std::vector<const char*> statements;
  RowWork rowWork = RowWork::kNone;
};

}  // namespace anm::store
