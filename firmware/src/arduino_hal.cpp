#include "arduino_hal.h"

#include <Adafruit_BME280.h>
#include <DHT.h>
#include <Wire.h>

#include <cmath>
#include <cstdio>
#include <cstring>

namespace hearth {

namespace {

ArduinoHal* gSelf = nullptr;  // PubSubClient's callback is a plain function

constexpr uint32_t kSensorMinIntervalMs = 2500;  // DHT22: one conversion per 2 s at most
constexpr uint32_t kPwmFrequency = 5000;
constexpr uint8_t kPwmBits = 10;

void copyStr(char* dst, size_t cap, const char* src) { snprintf(dst, cap, "%s", src == nullptr ? "" : src); }

}  // namespace

void ArduinoHal::begin() {
  gSelf = this;
  // Big buffers so a burst (hello + every state on connect) never blocks Serial.write.
  Serial.setRxBufferSize(2048);
  Serial.setTxBufferSize(4096);
  Serial.begin(115200);
#if ARDUINO_USB_CDC_ON_BOOT && ARDUINO_USB_MODE
  Serial.setTxTimeoutMs(0);  // HW CDC with no host attached would otherwise wait on every write
#endif
  prefs_.begin("hearth", false);
  WiFi.persistent(false);  // credentials live in our own NVS namespace, written only on `prov`
  WiFi.mode(WIFI_STA);
  WiFi.setAutoReconnect(true);
  mqtt_.setBufferSize(kMaxMessage + 160);  // the largest message plus its topic and header
  mqtt_.setCallback(&ArduinoHal::onMessage);
  mqtt_.setSocketTimeout(2);  // bounds the only blocking wait left: CONNACK after a TCP connect
}

void ArduinoHal::boardId(char out[13]) {
  uint8_t mac[6] = {0};
  WiFi.macAddress(mac);
  snprintf(out, 13, "%02x%02x%02x%02x%02x%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

void ArduinoHal::poll() {
  int avail = Serial.available();
  if (avail > 0 && board_ != nullptr) {
    const size_t n = Serial.read(rx_, static_cast<size_t>(avail) < sizeof(rx_) ? static_cast<size_t>(avail) : sizeof(rx_));
    if (n > 0) board_->onSerialBytes(rx_, n, millis());
  }
  switch (net_) {
    case Net::Idle: break;
    case Net::WaitWifi:
      if (WiFi.status() == WL_CONNECTED) connectBroker();
      break;  // the Board's connect timeout covers a Wi-Fi that never comes up
    case Net::Connected:
      if (!mqtt_.loop()) {  // false once the connection is gone (keepalive, TCP reset, Wi-Fi loss)
        net_ = Net::Idle;
        tcp_.stop();
        if (board_ != nullptr) board_->onMqttDisconnected();
      }
      break;
  }
}

// The one bounded blocking step: a TCP connect to a LAN broker (at most 1 s when it is unreachable) and
// PubSubClient's wait for CONNACK (at most the 2 s socket timeout). Use an IP address as the host: a DNS
// lookup would add its own wait. The serial heartbeat tolerates this (the host allows 6 s).
void ArduinoHal::connectBroker() {
  bool ok = tcp_.connect(host_, port_, 1000) == 1;
  // Nagle + the broker's delayed ACK hold a small ack back ~40 ms per hop; commands are tiny and latency-bound.
  if (ok) tcp_.setNoDelay(true);
  if (ok) {
    mqtt_.setServer(host_, port_);
    ok = mqtt_.connect(clientId_, user_, password_[0] ? password_ : nullptr, willTopic_, willQos_, willRetain_,
                       willPayload_, true);
  }
  if (ok) {
    net_ = Net::Connected;
    if (board_ != nullptr) board_->onMqttConnected();
  } else {
    tcp_.stop();
    net_ = Net::Idle;
    if (board_ != nullptr) board_->onMqttDisconnected();
  }
}

bool ArduinoHal::mqttConnect(const MqttConnectParams& p) {
  if (p.ssid == nullptr || p.ssid[0] == '\0') return false;  // provisioned without Wi-Fi: nothing to join
  const bool newNetwork = strcmp(ssid_, p.ssid) != 0 || strcmp(wifiPass_, p.wifiPass) != 0;
  copyStr(ssid_, sizeof(ssid_), p.ssid);
  copyStr(wifiPass_, sizeof(wifiPass_), p.wifiPass);
  copyStr(host_, sizeof(host_), p.host);
  port_ = p.port;
  copyStr(clientId_, sizeof(clientId_), p.clientId);
  copyStr(user_, sizeof(user_), p.user);
  copyStr(password_, sizeof(password_), p.password);
  copyStr(willTopic_, sizeof(willTopic_), p.willTopic);
  copyStr(willPayload_, sizeof(willPayload_), p.willPayload);
  willQos_ = p.willQos;
  willRetain_ = p.willRetain;
  mqtt_.setKeepAlive(p.keepAliveS);
  if (newNetwork || WiFi.status() != WL_CONNECTED) {
    if (newNetwork) WiFi.disconnect();
    WiFi.begin(ssid_, wifiPass_);  // returns at once; association happens in the background
  }
  net_ = Net::WaitWifi;
  return true;
}

// PubSubClient publishes at QoS 0 only (it can subscribe at QoS 1). The gap is covered by TCP, by the
// Board republishing every state on each reconnect, and by the agent retrying commands by id.
bool ArduinoHal::mqttPublish(const char* topic, const uint8_t* payload, size_t len, bool retained, uint8_t) {
  if (net_ != Net::Connected) return false;
  return mqtt_.publish(topic, payload, static_cast<unsigned int>(len), retained);
}

bool ArduinoHal::mqttSubscribe(const char* topic, uint8_t qos) {
  return net_ == Net::Connected && mqtt_.subscribe(topic, qos);
}

void ArduinoHal::mqttDisconnect() {
  if (net_ == Net::Connected) mqtt_.disconnect();
  tcp_.stop();
  net_ = Net::Idle;
}

void ArduinoHal::onMessage(char* topic, uint8_t* payload, unsigned int len) {
  // Runs inside mqtt_.loop(). The Board parses the payload completely before it publishes anything,
  // which matters: PubSubClient reuses one buffer for receiving and sending.
  if (gSelf != nullptr && gSelf->board_ != nullptr) gSelf->board_->onMqttMessage(topic, payload, len);
}

void ArduinoHal::gpioSetup(int pin, PinMode mode) {
  switch (mode) {
    case PinMode::Output: pinMode(pin, OUTPUT); break;
    case PinMode::Input: pinMode(pin, INPUT); break;
    case PinMode::InputPullup: pinMode(pin, INPUT_PULLUP); break;
    case PinMode::Pwm:
      for (int ch = 0; ch < kMaxPwm; ++ch) {
        if (pwmPins_[ch] == pin) return;
        if (pwmPins_[ch] < 0) {
          pwmPins_[ch] = pin;
#if defined(ESP_ARDUINO_VERSION_MAJOR) && ESP_ARDUINO_VERSION_MAJOR >= 3
          ledcAttach(pin, kPwmFrequency, kPwmBits);
#else
          ledcSetup(ch, kPwmFrequency, kPwmBits);
          ledcAttachPin(pin, ch);
#endif
          return;
        }
      }
      break;  // out of channels: EntityTable allows more dimmers than the C3 has channels; they stay off
  }
}

void ArduinoHal::pwmWrite(int pin, float duty) {
  if (duty < 0) duty = 0;
  if (duty > 1) duty = 1;
  const uint32_t value = static_cast<uint32_t>(std::lround(duty * ((1u << kPwmBits) - 1)));
  for (int ch = 0; ch < kMaxPwm; ++ch) {
    if (pwmPins_[ch] != pin) continue;
#if defined(ESP_ARDUINO_VERSION_MAJOR) && ESP_ARDUINO_VERSION_MAJOR >= 3
    ledcWrite(pin, value);
#else
    ledcWrite(ch, value);
#endif
    return;
  }
}

ArduinoHal::SensorSlot* ArduinoHal::sensorSlot(const Entity& e) {
  for (auto& s : sensors_) {
    if (s.pin == e.pin && s.drv == e.drv) return &s;
  }
  for (auto& s : sensors_) {
    if (s.pin >= 0) continue;
    s.pin = e.pin;
    s.drv = e.drv;
    // Set up once, at the first read (allocation here is fine: it happens once per device, not per loop).
    if (e.drv == Driver::Dht22) {
      s.dht = new DHT(static_cast<uint8_t>(e.pin), DHT22);
      s.dht->begin();
      s.ok = true;
    } else if (e.drv == Driver::Bme280) {
      Wire.begin(e.pin, e.pin2);
      s.bme = new Adafruit_BME280();
      s.ok = s.bme->begin(0x76, &Wire) || s.bme->begin(0x77, &Wire);
    }
    s.lastRead = millis() - kSensorMinIntervalMs;  // read at the first chance
    return &s;
  }
  return nullptr;
}

void ArduinoHal::refresh(SensorSlot& s) {
  const uint32_t now = millis();
  if (now - s.lastRead < kSensorMinIntervalMs) return;
  // One physical read per loop() pass at most: a DHT22 read holds the CPU for ~5 ms.
  if (now == lastPhysicalRead_) return;
  lastPhysicalRead_ = now;
  s.lastRead = now;
  float t = NAN, h = NAN;
  if (s.dht != nullptr) {
    t = s.dht->readTemperature();
    h = s.dht->readHumidity();  // same conversion: the library caches it for 2 s
  } else if (s.bme != nullptr && s.ok) {
    t = s.bme->readTemperature();
    h = s.bme->readHumidity();
  }
  if (!std::isnan(t)) {
    s.temperature = t;
    s.humidity = h;
    s.haveReading = true;
  }
}

SensorStatus ArduinoHal::readSensor(const Entity& e, double* value) {
  SensorSlot* s = sensorSlot(e);
  if (s == nullptr || !s->ok) return SensorStatus::Failed;
  refresh(*s);
  if (!s->haveReading) return SensorStatus::Pending;
  const float v = e.kind == Kind::Humidity ? s->humidity : s->temperature;
  if (std::isnan(v)) return SensorStatus::Failed;
  *value = v;
  return SensorStatus::Ok;
}

bool ArduinoHal::nvsGet(const char* key, char* out, size_t cap) {
  if (!prefs_.isKey(key)) return false;
  return prefs_.getString(key, out, cap) > 0;
}

bool ArduinoHal::nvsSet(const char* key, const char* value) {
  // Preferences reports an empty string written as 0 bytes, like a failure: store "" as "no key".
  if (value[0] == '\0') return !prefs_.isKey(key) || prefs_.remove(key);
  return prefs_.putString(key, value) == strlen(value);
}

void ArduinoHal::serialWrite(const uint8_t* data, size_t len) {
  // Never block loop(): drop a frame that does not fit in the TX buffer. The receiver resynchronises at
  // the next frame's leading 0x00, and heartbeats/state are periodic.
  if (Serial.availableForWrite() < static_cast<int>(len)) return;
  Serial.write(data, len);
}

}  // namespace hearth
