#pragma once
#include <cstddef>

#include "message.h"

namespace hearth {

// The results of the last 16 command ids (docs/protocol.md, "Idempotent commands"): a retried id is
// answered from here instead of being executed again. A ring: the oldest result is forgotten first.
class AckMemory {
 public:
  static constexpr size_t kSize = 16;
  const AckRecord* find(const char* id) const;
  void remember(const AckRecord& rec);
  void clear();
  size_t size() const { return count_; }

 private:
  AckRecord records_[kSize];
  size_t next_ = 0;
  size_t count_ = 0;
};

}  // namespace hearth
