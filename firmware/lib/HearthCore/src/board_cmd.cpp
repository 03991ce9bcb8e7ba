// Commands, provisioning and acks: the idempotent half of the Board.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "board.h"

namespace hearth {

namespace {

void setText(AckRecord& rec, const char* text) {
  rec.hasVal = true;
  rec.valIsText = true;
  snprintf(rec.text, sizeof(rec.text), "%s", text);
}

void setNum(AckRecord& rec, double v) {
  rec.hasVal = true;
  rec.valIsText = false;
  rec.num = v;
}

}  // namespace

void Board::handleCommand(const Command& c, Link from) {
  if (const AckRecord* prev = acks_.find(c.id)) {
    sendAck(*prev, from);  // a retry: answer again, never execute twice
    return;
  }
  AckRecord rec;
  memset(&rec, 0, sizeof(rec));
  snprintf(rec.id, sizeof(rec.id), "%s", c.id);
  int changed = -1;
  rec.err = execute(c, rec, &changed);
  // `busy` means "not executed, try again": remembering it would turn the retry into the same refusal.
  if (rec.err != AckError::Busy) acks_.remember(rec);
  sendAck(rec, from);
  if (changed >= 0) reportState(static_cast<size_t>(changed), true, true);
}

AckError Board::execute(const Command& c, AckRecord& rec, int* changed) {
  if (c.error != AckError::None) return c.error;
  const int idx = c.entity[0] == '\0' ? table_.statusLed() : table_.find(c.entity);
  if (idx < 0) return AckError::UnknownEntity;
  const size_t i = static_cast<size_t>(idx);
  const Entity& e = table_[i];

  switch (c.action) {
    case Action::Get:
      if (e.kind == Kind::StatusLed) {
        setText(rec, ledModeName(led_));
        return AckError::None;
      }
      if (std::isnan(values_[i])) return AckError::Busy;  // a sensor that has not been read yet
      setNum(rec, values_[i]);
      return AckError::None;

    case Action::Led: {
      if (e.kind != Kind::StatusLed) return isOutput(e.kind) ? AckError::BadAction : AckError::ReadOnly;
      LedMode m;
      if (!c.hasMode || !parseLedMode(c.mode, &m)) return AckError::BadValue;
      if (m != led_) {
        led_ = m;
        ledEpoch_ = now_;
        hal_.noteLed(ledModeName(m));
        *changed = idx;
      }
      setText(rec, ledModeName(m));
      return AckError::None;
    }

    case Action::Set:
    case Action::Toggle: {
      if (!isOutput(e.kind)) return AckError::ReadOnly;
      if (e.kind == Kind::StatusLed) return AckError::BadAction;  // it takes `led` with a mode
      if (e.kind == Kind::Cover && pulsing_[i]) return AckError::Busy;
      double v;
      if (c.action == Action::Set) {
        if (!c.hasVal || c.val < e.min || c.val > e.max) return AckError::BadValue;
        v = c.val;
        if (isBinary(e.kind) && v != 0 && v != 1) return AckError::BadValue;
        if (e.kind == Kind::Dimmer) {
          v = std::round(v);  // whole percent; keep inside the range after rounding
          if (v < e.min) v = std::ceil(e.min);
          if (v > e.max) v = std::floor(e.max);
        }
      } else if (e.kind == Kind::Dimmer) {
        v = values_[i] > 0 ? 0 : (lastOn_[i] > 0 ? lastOn_[i] : e.max);
      } else {
        v = values_[i] != 0 ? 0 : 1;
      }
      if (v != values_[i]) {
        applyOutput(i, v);
        *changed = idx;
      }
      setNum(rec, v);
      return AckError::None;
    }

    case Action::None: break;
  }
  return AckError::BadAction;
}

void Board::handleProvision(const Provision& p, Link from) {
  if (const AckRecord* prev = acks_.find(p.id)) {
    sendAck(*prev, from);
    return;
  }
  AckRecord rec;
  memset(&rec, 0, sizeof(rec));
  snprintf(rec.id, sizeof(rec.id), "%s", p.id);
  rec.err = p.error;
  if (rec.err == AckError::None) {
    char port[8];
    snprintf(port, sizeof(port), "%u", static_cast<unsigned>(p.port));
    const bool stored = hal_.nvsSet("ssid", p.ssid) && hal_.nvsSet("pass", p.pass) && hal_.nvsSet("host", p.host) &&
                        hal_.nvsSet("port", port) && hal_.nvsSet("user", p.user) &&
                        hal_.nvsSet("mqpass", p.mqpass) && hal_.nvsSet("site", p.site);
    if (!stored) rec.err = AckError::Busy;  // flash full or failing: the host may retry
  }
  if (rec.err != AckError::Busy) acks_.remember(rec);
  sendAck(rec, from);
  if (rec.err != AckError::None) return;
  restartMqtt();  // still on the old topics: publishes `offline` there
  // Provisioned values win over the boot-time overrides from now on.
  cfg_.overrides = nullptr;
  loadCreds();
  buildTopics();
  hal_.noteProvisioned(creds_.site, creds_.host);
}

void Board::sendAck(const AckRecord& rec, Link to) {
  if (dropAcks_ > 0) {
    --dropAcks_;
    hal_.noteAck(rec.id, rec.err == AckError::None, true);
    return;
  }
  if (cfg_.ackDelayMs > 0) {
    for (auto& d : delayed_) {
      if (!d.used) {
        d.used = true;
        d.link = to;
        d.due = now_ + cfg_.ackDelayMs;
        d.rec = rec;
        return;
      }
    }
    // Queue full: send now rather than lose it.
  }
  transmitAck(rec, to);
}

void Board::transmitAck(const AckRecord& rec, Link to) {
  const size_t n = encodeAck(json_, sizeof(json_), rec);
  bool sent = true;
  if (to == Link::Serial) {
    sendSerial(n);
  } else {
    sent = publish("ack", json_, n, false, 1);
  }
  hal_.noteAck(rec.id, rec.err == AckError::None, !sent);
}

void Board::flushDelayedAcks(uint32_t now) {
  for (auto& d : delayed_) {
    if (d.used && static_cast<int32_t>(now - d.due) >= 0) {
      d.used = false;
      transmitAck(d.rec, d.link);
    }
  }
}

}  // namespace hearth
