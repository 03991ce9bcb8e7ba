#pragma once
#include <cstdint>

#include "message.h"

namespace hearth {

struct DebounceConfig {
  uint16_t debounceMs = 30;   // a level must hold this long to count (contact bounce is < 10 ms typically)
  uint16_t longMs = 800;      // held this long: `long` (emitted while still held)
  uint16_t doubleMs = 300;    // a second press starting within this time after a release: `double`
  bool immediatePress = false;  // push-to-talk: `press` on the down edge, no double detection (no 300 ms wait)
};

struct DebounceResult {
  bool changed;     // the debounced level changed in this update
  Gesture gesture;  // at most one gesture per update
};

// One input: debounces raw samples (call every few ms with the logical level, true = active) and turns
// the debounced edges into press / long / double gestures. A short click is reported after the double-click
// window has passed without a second press; a double is reported on the second press's down edge.
class Debouncer {
 public:
  explicit Debouncer(DebounceConfig cfg = DebounceConfig()) : cfg_(cfg) {}
  void configure(DebounceConfig cfg) { cfg_ = cfg; }
  void reset(bool level, uint32_t nowMs);
  DebounceResult update(bool raw, uint32_t nowMs);
  bool level() const { return stable_; }

 private:
  enum class Phase : uint8_t { Idle, Down, WaitDouble, WaitRelease };
  Gesture onEdge(bool down, uint32_t nowMs);

  DebounceConfig cfg_;
  bool stable_ = false;
  bool candidate_ = false;
  uint32_t candidateSince_ = 0;
  Phase phase_ = Phase::Idle;
  uint32_t phaseSince_ = 0;
};

}  // namespace hearth
