// Pins, inputs, sensors and the status LED: the hardware-facing half of the Board.
#include <cmath>

#include "board.h"

namespace hearth {

namespace {

constexpr uint32_t kSampleMs = 5;  // input sampling period; the debouncer needs several samples per 30 ms

// Blink patterns: on for `on` ms of every `period` ms; period 0 means steady (on != 0: lit).
struct Pattern {
  uint16_t on;
  uint16_t period;
};

double hysteresis(Kind k) { return k == Kind::Temperature ? 0.2 : 1.0; }

}  // namespace

void Board::setupPins() {
  for (size_t i = 0; i < table_.size(); ++i) {
    const Entity& e = table_[i];
    values_[i] = isSensor(e.kind) ? NAN : 0;
    reported_[i] = NAN;
    lastOn_[i] = e.max;
    pulsing_[i] = false;
    switch (e.kind) {
      case Kind::Switch:
      case Kind::Lock:
      case Kind::Cover:
      case Kind::StatusLed:
        // Level before and after the mode change, so an active-low relay never sees a low glitch.
        hal_.gpioWrite(e.pin, e.inv);
        hal_.gpioSetup(e.pin, PinMode::Output);
        hal_.gpioWrite(e.pin, e.inv);
        if (e.kind != Kind::StatusLed) hal_.noteOutput(e, 0);
        break;
      case Kind::Dimmer:
        hal_.gpioSetup(e.pin, PinMode::Pwm);
        hal_.pwmWrite(e.pin, e.inv ? 1.0f : 0.0f);
        hal_.noteOutput(e, 0);
        break;
      case Kind::Button:
      case Kind::Contact: {
        // Contacts are reed switches to GND (internal pull-up); buttons use it when active-low.
        hal_.gpioSetup(e.pin, e.kind == Kind::Contact || e.inv ? PinMode::InputPullup : PinMode::Input);
        DebounceConfig dc;
        dc.immediatePress = e.ptt;  // push-to-talk must not wait out the double-click window
        inputs_[i].configure(dc);
        const bool level = hal_.gpioRead(e.pin) != e.inv;
        inputs_[i].reset(level, now_);
        values_[i] = level ? 1 : 0;
        break;
      }
      case Kind::Temperature:
      case Kind::Humidity: break;  // the Hal sets sensors up on first read
    }
  }
  led_ = LedMode::Idle;
  ledEpoch_ = now_;
  ledLevel_ = false;
}

void Board::applyOutput(size_t i, double v) {
  const Entity& e = table_[i];
  values_[i] = v;
  switch (e.kind) {
    case Kind::Switch:
    case Kind::Lock: hal_.gpioWrite(e.pin, (v != 0) != e.inv); break;
    case Kind::Cover:
      // The value is the commanded position; the relay is pulsed like a wall button.
      hal_.gpioWrite(e.pin, !e.inv);
      pulsing_[i] = true;
      pulseEnd_[i] = now_ + kCoverPulseMs;
      break;
    case Kind::Dimmer: {
      if (v > 0) lastOn_[i] = v;
      const float duty = static_cast<float>(v / 100.0);
      hal_.pwmWrite(e.pin, e.inv ? 1.0f - duty : duty);
      break;
    }
    default: break;
  }
  hal_.noteOutput(e, v);
}

void Board::finishPulses(uint32_t now) {
  for (size_t i = 0; i < table_.size(); ++i) {
    if (pulsing_[i] && static_cast<int32_t>(now - pulseEnd_[i]) >= 0) {
      pulsing_[i] = false;
      hal_.gpioWrite(table_[i].pin, table_[i].inv);
    }
  }
}

void Board::sampleInputs(uint32_t now) {
  if (static_cast<int32_t>(now - sampleDue_) < 0) return;
  sampleDue_ = now + kSampleMs;
  for (size_t i = 0; i < table_.size(); ++i) {
    const Entity& e = table_[i];
    if (e.kind != Kind::Button && e.kind != Kind::Contact) continue;
    const DebounceResult r = inputs_[i].update(hal_.gpioRead(e.pin) != e.inv, now);
    if (r.changed) {
      values_[i] = inputs_[i].level() ? 1 : 0;
      // Buttons report gestures, not levels: a retained 1/0 flapping per press would be noise.
      if (e.kind == Kind::Contact) reportState(i, true, true);
    }
    if (r.gesture != Gesture::None && e.kind == Kind::Button) reportEvent(i, r.gesture);
  }
}

void Board::pollSensors() {
  for (size_t i = 0; i < table_.size(); ++i) {
    const Entity& e = table_[i];
    if (!isSensor(e.kind)) continue;
    double v = 0;
    if (hal_.readSensor(e, &v) != SensorStatus::Ok) continue;  // keep the last good value
    if (!std::isfinite(v) || v < e.min || v > e.max) continue;  // outside the sensor's range: a bad read
    v = std::round(v * 10) / 10;
    values_[i] = v;
    if (std::isnan(reported_[i]) || std::fabs(v - reported_[i]) >= hysteresis(e.kind)) reportState(i, true, true);
  }
}

void Board::updateLed(uint32_t now) {
  const int idx = table_.statusLed();
  if (idx < 0) return;
  const Entity& e = table_[static_cast<size_t>(idx)];
  Pattern p{0, 0};
  switch (led_) {
    case LedMode::Idle: {
      // The board's own status: dark when some host can reach it, slow blips while connecting, a steady
      // blink when it has neither credentials nor a serial host (it needs provisioning).
      const bool serialHost = hostSeen_ && now - hostSeenMs_ < kHostSilentMs;
      if (mqtt_ == MqttState::Connected || serialHost) {
        p = {0, 0};
      } else if (haveCreds_) {
        p = {100, 1000};
      } else {
        p = {500, 1000};
      }
      break;
    }
    case LedMode::Listening: p = {1, 0}; break;
    case LedMode::Thinking: p = {150, 300}; break;
    case LedMode::Speaking: p = {600, 800}; break;
    case LedMode::Error: p = {60, 120}; break;
  }
  const bool on = p.period == 0 ? p.on != 0 : (now - ledEpoch_) % p.period < p.on;
  if (on != ledLevel_) {
    ledLevel_ = on;
    hal_.gpioWrite(e.pin, on != e.inv);
  }
}

}  // namespace hearth
