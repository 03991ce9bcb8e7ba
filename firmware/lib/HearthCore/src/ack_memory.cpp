#include "ack_memory.h"

#include <cstring>

namespace hearth {

const AckRecord* AckMemory::find(const char* id) const {
  for (size_t i = 0; i < count_; ++i) {
    if (strcmp(records_[i].id, id) == 0) return &records_[i];
  }
  return nullptr;
}

void AckMemory::remember(const AckRecord& rec) {
  records_[next_] = rec;
  next_ = (next_ + 1) % kSize;
  if (count_ < kSize) ++count_;
}

void AckMemory::clear() {
  next_ = 0;
  count_ = 0;
}

}  // namespace hearth
