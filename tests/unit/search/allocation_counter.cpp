// tests/unit/search/allocation_counter.cpp: counts the allocations of the search test program.
// SPDX-License-Identifier: Apache-2.0
#include "tests/unit/search/allocation_counter.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<size_t> allocationCount{0};
}  // namespace

void* operator new(size_t size) {
  ++allocationCount;
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc();
}

// The nothrow form too (std::stable_sort's buffer uses it), so that every block the deletes
// below free came from malloc.
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  ++allocationCount;
  return std::malloc(size == 0 ? 1 : size);
}

void operator delete(void* memory) noexcept { std::free(memory); }

void operator delete(void* memory, size_t) noexcept { std::free(memory); }

namespace anm::search {

size_t allocationsSoFar() { return allocationCount; }

}  // namespace anm::search
