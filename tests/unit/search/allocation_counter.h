// tests/unit/search/allocation_counter.h: counts the allocations of the search test program.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>

namespace anm::search {

/// How many times operator new has run in this program so far. The operators are replaced in
/// allocation_counter.cpp, a file of their own so that no test inlines them.
size_t allocationsSoFar();

}  // namespace anm::search
