#include "board.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hearth {

namespace {

// Wrap-safe "is `at` reached" for a millis() clock that rolls over every 49 days.
bool due(uint32_t now, uint32_t at) { return static_cast<int32_t>(now - at) >= 0; }

bool validBoardId(const char* s) {
  if (s == nullptr || strlen(s) != 12) return false;
  for (const char* p = s; *p; ++p) {
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  }
  return true;
}

void copyField(char* dst, size_t cap, const char* src) {
  snprintf(dst, cap, "%s", src == nullptr ? "" : src);
}

}  // namespace

Board::Board(Hal& hal) : hal_(hal) {
  memset(&creds_, 0, sizeof(creds_));
  memset(delayed_, 0, sizeof(delayed_));
  for (size_t i = 0; i < kMax; ++i) {
    values_[i] = reported_[i] = NAN;
    lastOn_[i] = 0;
    pulsing_[i] = false;
    pulseEnd_[i] = 0;
  }
}

bool Board::begin(const char* spec, size_t specLen, const BoardConfig& cfg) {
  cfg_ = cfg;
  begun_ = false;
  err_[0] = '\0';
  if (!validBoardId(cfg.boardId)) {
    snprintf(err_, sizeof(err_), "board id must be 12 lower-case hex digits (the Wi-Fi MAC)");
    return false;
  }
  copyField(boardId_, sizeof(boardId_), cfg.boardId);
  if (cfg_.fw == nullptr) cfg_.fw = kFirmwareVersion;
  if (!table_.load(spec, specLen)) {
    copyField(err_, sizeof(err_), table_.error());
    return false;
  }
  const HelloInfo worst{boardId_, cfg_.fw, table_.profile(), 4294967295u};
  const size_t helloBytes = encodeHello(nullptr, 0, worst, table_);
  if (helloBytes > kMaxMessage) {
    snprintf(err_, sizeof(err_), "entity spec: the hello message would be %u bytes, over the %u-byte limit; "
             "shorten names and areas or split the board", static_cast<unsigned>(helloBytes),
             static_cast<unsigned>(kMaxMessage));
    table_.load("", 0);
    return false;
  }
  now_ = bootMs_ = hal_.nowMs();
  setupPins();  // first: relays must reach their off level as early as possible

  char num[16];
  uint32_t previous = 0;
  if (hal_.nvsGet("boot", num, sizeof(num))) previous = static_cast<uint32_t>(strtoul(num, nullptr, 10));
  boot_ = previous + 1;
  snprintf(num, sizeof(num), "%lu", static_cast<unsigned long>(boot_));
  hal_.nvsSet("boot", num);

  decoder_.reset();
  acks_.clear();
  memset(delayed_, 0, sizeof(delayed_));
  dropAcks_ = cfg_.dropAcks;
  backoff_ = Backoff(cfg_.backoffBaseMs, cfg_.backoffCapMs);
  loadCreds();
  buildTopics();
  mqtt_ = MqttState::Disconnected;
  nextAttempt_ = now_;
  hbDue_ = now_ + cfg_.hbMs;
  teleDue_ = now_ + cfg_.teleMs;
  sensorDue_ = sampleDue_ = now_;
  begun_ = true;
  hal_.noteBoot(boot_);
  sendHello(true, false);
  return true;
}

void Board::loadCreds() {
  memset(&creds_, 0, sizeof(creds_));
  hal_.nvsGet("ssid", creds_.ssid, sizeof(creds_.ssid));
  hal_.nvsGet("pass", creds_.pass, sizeof(creds_.pass));
  hal_.nvsGet("host", creds_.host, sizeof(creds_.host));
  hal_.nvsGet("user", creds_.user, sizeof(creds_.user));
  hal_.nvsGet("mqpass", creds_.mqpass, sizeof(creds_.mqpass));
  hal_.nvsGet("site", creds_.site, sizeof(creds_.site));
  char port[8] = "";
  if (hal_.nvsGet("port", port, sizeof(port))) creds_.port = static_cast<uint16_t>(atoi(port));
  if (const MqttCreds* o = cfg_.overrides) {
    if (o->ssid[0]) copyField(creds_.ssid, sizeof(creds_.ssid), o->ssid);
    if (o->pass[0]) copyField(creds_.pass, sizeof(creds_.pass), o->pass);
    if (o->host[0]) copyField(creds_.host, sizeof(creds_.host), o->host);
    if (o->user[0]) copyField(creds_.user, sizeof(creds_.user), o->user);
    if (o->mqpass[0]) copyField(creds_.mqpass, sizeof(creds_.mqpass), o->mqpass);
    if (o->site[0]) copyField(creds_.site, sizeof(creds_.site), o->site);
    if (o->port != 0) creds_.port = o->port;
  }
  if (creds_.port == 0) creds_.port = 1883;
  if (creds_.user[0] == '\0') copyField(creds_.user, sizeof(creds_.user), boardId_);
  haveCreds_ = creds_.host[0] != '\0' && validTopicName(creds_.site, strlen(creds_.site));
}

void Board::buildTopics() {
  snprintf(prefix_, sizeof(prefix_), "hearth/%s/%s/", creds_.site, boardId_);
  snprintf(cmdTopic_, sizeof(cmdTopic_), "%scmd", prefix_);
  snprintf(willTopic_, sizeof(willTopic_), "%sstatus", prefix_);
  snprintf(clientId_, sizeof(clientId_), "hearth-%s", boardId_);
}

// ------------------------------------------------------------------------------------------------ input

void Board::tick(uint32_t nowMs) {
  now_ = nowMs;
  if (!begun_) return;
  decoder_.expire(nowMs);
  sampleInputs(nowMs);
  finishPulses(nowMs);
  if (due(nowMs, sensorDue_)) {
    sensorDue_ = nowMs + cfg_.sensorMs;
    pollSensors();
  }
  if (due(nowMs, hbDue_)) {
    hbDue_ = nowMs + cfg_.hbMs;
    sendHb();
  }
  if (due(nowMs, teleDue_)) {
    teleDue_ = nowMs + cfg_.teleMs;
    sendTele(true, true);
    for (size_t i = 0; i < table_.size(); ++i) {
      if (isSensor(table_[i].kind)) reportState(i, true, true);  // periodic, even when unchanged
    }
  }
  flushDelayedAcks(nowMs);
  mqttTick(nowMs);
  updateLed(nowMs);
  noteBadIfChanged();
}

void Board::onSerialBytes(const uint8_t* data, size_t len, uint32_t nowMs) {
  now_ = nowMs;
  if (!begun_) return;
  decoder_.feed(data, len, nowMs, *this);
  noteBadIfChanged();
}

void Board::onFrame(const char* json, size_t len) { handleMessage(json, len, Link::Serial); }

void Board::onMqttMessage(const char* topic, const uint8_t* payload, size_t len) {
  now_ = hal_.nowMs();
  if (!begun_ || mqtt_ != MqttState::Connected) return;  // a late delivery from a session we gave up
  if (topic == nullptr || strcmp(topic, cmdTopic_) != 0 || payload == nullptr || len > kMaxMessage) {
    countBad();
  } else {
    handleMessage(reinterpret_cast<const char*>(payload), len, Link::Mqtt);
  }
  noteBadIfChanged();
}

void Board::handleMessage(const char* json, size_t len, Link from) {
  decodeIncoming(json, len, reader_, incoming_);
  const Incoming& in = incoming_;
  if (in.type == MsgType::Invalid || ((in.type == MsgType::Cmd || in.type == MsgType::Prov) && !in.hasId)) {
    countBad();
    return;
  }
  if (in.type == MsgType::Prov && from != Link::Serial) {
    countBad();  // credentials never travel over the broker
    return;
  }
  if (from == Link::Serial) {
    hostSeen_ = true;
    hostSeenMs_ = now_;
  }
  switch (in.type) {
    case MsgType::Ping:
      if (from == Link::Serial) {
        sendHb();
        if (in.pingHello) sendHello(true, false);
      } else {
        sendTele(false, true);  // the topic tree has no hb topic: a tele proves liveness on MQTT
        if (in.pingHello) sendHello(false, true);
      }
      break;
    case MsgType::Cmd: handleCommand(in.cmd, from); break;
    case MsgType::Prov: handleProvision(in.prov, from); break;
    case MsgType::Invalid: break;
  }
}

void Board::countBad() { ++badMessages_; }

void Board::noteBadIfChanged() {
  const uint32_t total = badCount();
  if (total != badNoted_) {
    badNoted_ = total;
    hal_.noteRxBad(total);
  }
}

// ------------------------------------------------------------------------------------------------ MQTT session

void Board::mqttTick(uint32_t now) {
  if (!haveCreds_) return;
  if (mqtt_ == MqttState::Disconnected && due(now, nextAttempt_)) {
    MqttConnectParams p{};
    p.ssid = creds_.ssid;
    p.wifiPass = creds_.pass;
    p.host = creds_.host;
    p.port = creds_.port;
    p.clientId = clientId_;
    p.user = creds_.user;
    p.password = creds_.mqpass;
    p.willTopic = willTopic_;
    p.willPayload = "offline";
    p.willRetain = true;
    p.willQos = 1;
    p.keepAliveS = 15;
    mqtt_ = MqttState::Connecting;
    connectStarted_ = now;
    if (!hal_.mqttConnect(p)) {
      mqtt_ = MqttState::Disconnected;
      scheduleReconnect();
    }
  } else if (mqtt_ == MqttState::Connecting && now - connectStarted_ >= cfg_.connectTimeoutMs) {
    hal_.mqttDisconnect();
    mqtt_ = MqttState::Disconnected;
    scheduleReconnect();
  }
}

void Board::scheduleReconnect() { nextAttempt_ = now_ + backoff_.next(hal_.random32()); }

void Board::onMqttConnected() {
  now_ = hal_.nowMs();
  if (!begun_ || mqtt_ != MqttState::Connecting) return;
  mqtt_ = MqttState::Connected;
  connectedAt_ = now_;
  // Spec order: online, hello, every state, then subscribe. All retained, so a dashboard or a restarted
  // agent sees the board at once; the Last Will replaces `online` if we vanish.
  publish("status", "online", 6, true, 1);
  sendHello(false, true);
  for (size_t i = 0; i < table_.size(); ++i) reportState(i, false, true);
  hal_.mqttSubscribe(cmdTopic_, 1);
  hal_.noteMqtt(true);
}

void Board::onMqttDisconnected() {
  now_ = hal_.nowMs();
  if (!begun_ || mqtt_ == MqttState::Disconnected) return;
  const bool wasUp = mqtt_ == MqttState::Connected;
  if (wasUp && now_ - connectedAt_ >= kStableLinkMs) backoff_.reset();
  mqtt_ = MqttState::Disconnected;
  scheduleReconnect();
  if (wasUp) hal_.noteMqtt(false);
}

// New credentials: say goodbye cleanly on the old session (a clean DISCONNECT suppresses the Last Will,
// so publish `offline` ourselves), then connect again at once.
void Board::restartMqtt() {
  const bool wasUp = mqtt_ == MqttState::Connected;
  if (wasUp) publish("status", "offline", 7, true, 1);
  if (mqtt_ != MqttState::Disconnected) hal_.mqttDisconnect();
  mqtt_ = MqttState::Disconnected;
  backoff_.reset();
  nextAttempt_ = now_;
  if (wasUp) hal_.noteMqtt(false);
}

// ------------------------------------------------------------------------------------------------ output

void Board::sendSerial(size_t jsonLen) {
  if (jsonLen == 0) return;
  const size_t n = FrameEncoder::encode(json_, jsonLen, wire_, sizeof(wire_));
  if (n > 0) hal_.serialWrite(wire_, n);
}

bool Board::publish(const char* suffix, const char* payload, size_t len, bool retained, uint8_t qos) {
  if (mqtt_ != MqttState::Connected || len == 0) return false;
  snprintf(topic_, sizeof(topic_), "%s%s", prefix_, suffix);
  return hal_.mqttPublish(topic_, reinterpret_cast<const uint8_t*>(payload), len, retained, qos);
}

void Board::sendHello(bool serial, bool mqtt) {
  const HelloInfo h{boardId_, cfg_.fw, table_.profile(), boot_};
  const size_t n = encodeHello(json_, sizeof(json_), h, table_);
  if (serial) sendSerial(n);
  if (mqtt) publish("hello", json_, n, true, 1);
}

Value Board::valueOf(size_t i) const {
  if (table_[i].kind == Kind::StatusLed) return Value::str(ledModeName(led_));
  return Value::number(values_[i]);
}

void Board::reportState(size_t i, bool serial, bool mqtt) {
  const Value v = valueOf(i);
  if (!v.isText && std::isnan(v.num)) return;  // a sensor without a reading yet has no state
  const size_t n = encodeState(json_, sizeof(json_), table_[i].id, v);
  if (serial) sendSerial(n);
  if (mqtt) {
    char suffix[8 + kMaxEntityId];
    snprintf(suffix, sizeof(suffix), "state/%s", table_[i].id);
    publish(suffix, json_, n, true, 1);
  }
  if (!v.isText) reported_[i] = v.num;
}

void Board::reportEvent(size_t i, Gesture g) {
  const size_t n = encodeEvent(json_, sizeof(json_), table_[i].id, g);
  sendSerial(n);
  publish("event", json_, n, false, 1);
}

void Board::sendTele(bool serial, bool mqtt) {
  TeleInfo t{++teleSeq_, uptimeS(), hal_.freeHeap(), 0, badCount()};
  if (serial) sendSerial(encodeTele(json_, sizeof(json_), t));
  if (mqtt && mqtt_ == MqttState::Connected) {
    t.rssi = hal_.rssi();
    publish("tele", json_, encodeTele(json_, sizeof(json_), t), false, 0);
  }
}

void Board::sendHb() { sendSerial(encodeHb(json_, sizeof(json_), ++hbSeq_, uptimeS())); }

}  // namespace hearth
