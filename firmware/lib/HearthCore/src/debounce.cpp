#include "debounce.h"

namespace hearth {

void Debouncer::reset(bool level, uint32_t nowMs) {
  stable_ = candidate_ = level;
  candidateSince_ = nowMs;
  // A button already held at boot must be released before it can produce a gesture.
  phase_ = level ? Phase::WaitRelease : Phase::Idle;
  phaseSince_ = nowMs;
}

DebounceResult Debouncer::update(bool raw, uint32_t nowMs) {
  DebounceResult r{false, Gesture::None};
  if (raw != candidate_) {
    candidate_ = raw;
    candidateSince_ = nowMs;
  }
  if (candidate_ != stable_ && nowMs - candidateSince_ >= cfg_.debounceMs) {
    stable_ = candidate_;
    r.changed = true;
    r.gesture = onEdge(stable_, nowMs);
    if (r.gesture != Gesture::None) return r;
  }
  // Time-based transitions.
  const uint32_t held = nowMs - phaseSince_;
  if (phase_ == Phase::Down && held >= cfg_.longMs) {
    phase_ = Phase::WaitRelease;
    r.gesture = Gesture::Long;
  } else if (phase_ == Phase::WaitDouble && held >= cfg_.doubleMs) {
    phase_ = Phase::Idle;
    r.gesture = Gesture::Press;
  }
  return r;
}

Gesture Debouncer::onEdge(bool down, uint32_t nowMs) {
  switch (phase_) {
    case Phase::Idle:
      if (!down) return Gesture::None;
      phase_ = Phase::Down;
      phaseSince_ = nowMs;
      return cfg_.immediatePress ? Gesture::Press : Gesture::None;
    case Phase::Down:
      if (down) return Gesture::None;
      if (cfg_.immediatePress) {
        phase_ = Phase::Idle;
        return Gesture::None;
      }
      phase_ = Phase::WaitDouble;
      phaseSince_ = nowMs;
      return Gesture::None;
    case Phase::WaitDouble:
      if (!down) return Gesture::None;
      phase_ = Phase::WaitRelease;
      phaseSince_ = nowMs;
      return Gesture::Double;
    case Phase::WaitRelease:
      if (!down) phase_ = Phase::Idle;
      return Gesture::None;
  }
  return Gesture::None;
}

}  // namespace hearth
