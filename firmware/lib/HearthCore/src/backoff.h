#pragma once
#include <cstdint>

namespace hearth {

// Exponential reconnect backoff with "equal jitter": attempt n waits a random time in
// [d/2, d] with d = min(cap, base * 2^n). Half the delay is guaranteed (no reconnect storms after a broker
// restart), half is random (boards that lost the broker together do not come back in lockstep).
// The random source is injected so tests are deterministic.
class Backoff {
 public:
  Backoff(uint32_t baseMs = 1000, uint32_t capMs = 60000) : baseMs_(baseMs), capMs_(capMs) {}
  uint32_t next(uint32_t random32);
  void reset() { attempts_ = 0; }
  uint32_t attempts() const { return attempts_; }
  uint32_t ceiling() const;  // d for the next attempt

 private:
  uint32_t baseMs_;
  uint32_t capMs_;
  uint32_t attempts_ = 0;
};

}  // namespace hearth
