#include "backoff.h"

namespace hearth {

uint32_t Backoff::ceiling() const {
  uint64_t d = baseMs_;
  for (uint32_t i = 0; i < attempts_ && d < capMs_; ++i) d *= 2;
  return d > capMs_ ? capMs_ : static_cast<uint32_t>(d);
}

uint32_t Backoff::next(uint32_t random32) {
  const uint32_t d = ceiling();
  if (attempts_ < 0xFFFF) ++attempts_;
  const uint32_t half = d / 2;
  return half + random32 % (d - half + 1);
}

}  // namespace hearth
