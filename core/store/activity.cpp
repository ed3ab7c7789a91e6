// core/store/activity.cpp: the per-minute counts both backends fill for the dashboard's charts.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/store.h"

namespace anm::store {

std::vector<ActivityBucket> emptyActivity(int64_t fromMs, int64_t bucketMs, size_t buckets) {
  std::vector<ActivityBucket> out;
  if (bucketMs <= 0) return out;
  out.resize(buckets);
  for (size_t i = 0; i < buckets; ++i) out[i].atMs = fromMs + bucketMs * static_cast<int64_t>(i);
  return out;
}

void countVerdict(std::vector<ActivityBucket>& buckets, int64_t index, int64_t verdict,
                  int64_t count) {
  if (index < 0 || static_cast<size_t>(index) >= buckets.size()) return;
  ActivityBucket& bucket = buckets[static_cast<size_t>(index)];
  switch (static_cast<Verdict>(verdict)) {
    case Verdict::kValid:
      bucket.valid += count;
      return;
    case Verdict::kInvalid:
      bucket.invalid += count;
      return;
    case Verdict::kUnsigned:
      bucket.unsigned_ += count;
      return;
  }
}

void countDeliveries(std::vector<ActivityBucket>& buckets, int64_t index, bool delivered,
                     int64_t count) {
  if (index < 0 || static_cast<size_t>(index) >= buckets.size()) return;
  ActivityBucket& bucket = buckets[static_cast<size_t>(index)];
  (delivered ? bucket.delivered : bucket.failed) += count;
}

}  // namespace anm::store
