// A scriptable Hal for the Board tests: records everything the Board does, lets the test set inputs.
#pragma once
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "board.h"
#include "frame.h"
#include "json.h"

namespace hearth_test {

using namespace hearth;

struct Published {
  std::string topic;
  std::string payload;
  bool retained;
  uint8_t qos;
};

// Collects decoded serial frames.
struct Collector : FrameSink {
  std::vector<std::string> msgs;
  void onFrame(const char* json, size_t len) override { msgs.emplace_back(json, len); }
};

class FakeHal : public Hal {
 public:
  uint32_t now = 1000;
  uint32_t rnd = 0;
  std::vector<uint8_t> serialOut;
  std::vector<Published> published;
  std::vector<std::string> subscribed;
  bool connectResult = true;
  int connectCalls = 0;
  int disconnects = 0;
  std::string host, clientId, user, password, willTopic, willPayload;
  uint16_t port = 0;
  bool willRetain = false;
  uint8_t willQos = 0;
  uint16_t keepAlive = 0;
  std::map<int, bool> pins;
  std::map<int, PinMode> modes;
  std::map<int, float> pwm;
  std::map<std::string, double> sensors;  // entity id -> value; missing: Pending
  std::map<std::string, std::string> nvs;
  bool nvsFails = false;
  std::vector<std::string> notes;

  uint32_t nowMs() override { return now; }
  uint32_t random32() override { return rnd; }
  void serialWrite(const uint8_t* data, size_t len) override { serialOut.insert(serialOut.end(), data, data + len); }
  bool mqttConnect(const MqttConnectParams& p) override {
    ++connectCalls;
    host = p.host;
    port = p.port;
    clientId = p.clientId;
    user = p.user;
    password = p.password;
    willTopic = p.willTopic;
    willPayload = p.willPayload;
    willRetain = p.willRetain;
    willQos = p.willQos;
    keepAlive = p.keepAliveS;
    return connectResult;
  }
  bool mqttPublish(const char* topic, const uint8_t* payload, size_t len, bool retained, uint8_t qos) override {
    published.push_back({topic, std::string(reinterpret_cast<const char*>(payload), len), retained, qos});
    return true;
  }
  bool mqttSubscribe(const char* topic, uint8_t) override {
    subscribed.emplace_back(topic);
    return true;
  }
  void mqttDisconnect() override { ++disconnects; }
  void gpioSetup(int pin, PinMode mode) override { modes[pin] = mode; }
  void gpioWrite(int pin, bool high) override { pins[pin] = high; }
  bool gpioRead(int pin) override { return pins.count(pin) ? pins[pin] : false; }
  void pwmWrite(int pin, float duty) override { pwm[pin] = duty; }
  SensorStatus readSensor(const Entity& e, double* value) override {
    auto it = sensors.find(e.id);
    if (it == sensors.end()) return SensorStatus::Pending;
    *value = it->second;
    return SensorStatus::Ok;
  }
  bool nvsGet(const char* key, char* out, size_t cap) override {
    auto it = nvs.find(key);
    if (it == nvs.end() || it->second.size() >= cap) return false;
    memcpy(out, it->second.c_str(), it->second.size() + 1);
    return true;
  }
  bool nvsSet(const char* key, const char* value) override {
    if (nvsFails) return false;
    nvs[key] = value;
    return true;
  }
  uint32_t freeHeap() override { return 123456; }
  int32_t rssi() override { return -61; }
  void noteLed(const char* mode) override { notes.push_back(std::string("led ") + mode); }
  void noteMqtt(bool up) override { notes.push_back(up ? "mqtt connected" : "mqtt disconnected"); }
  void noteAck(const char* id, bool ok, bool dropped) override {
    notes.push_back(std::string("ack ") + id + (dropped ? " dropped" : ok ? " ok" : " err"));
  }

  // Decoded serial output since the last call.
  std::vector<std::string> takeSerial() {
    Collector c;
    FrameDecoder d;
    d.feed(serialOut.data(), serialOut.size(), now, c);
    serialOut.clear();
    return c.msgs;
  }
  std::vector<Published> takePublished() {
    std::vector<Published> out;
    out.swap(published);
    return out;
  }
};

// Field access on one flat JSON message, for assertions.
class Msg {
 public:
  explicit Msg(const std::string& json) : ok_(r_.parse(json.data(), json.size())) {}
  bool ok() const { return ok_; }
  std::string str(const char* k) const {
    const char* s = nullptr;
    return r_.getString(k, &s) ? std::string(s) : std::string("<missing>");
  }
  double num(const char* k) const {
    double v = -12345;
    r_.getNumber(k, &v);
    return v;
  }
  bool has(const char* k) const { return r_.find(k) != nullptr; }
  bool boolean(const char* k) const {
    bool b = false;
    r_.getBool(k, &b);
    return b;
  }

 private:
  JsonReader r_;
  bool ok_;
};

// Messages of type `t` among `msgs`.
inline std::vector<std::string> ofType(const std::vector<std::string>& msgs, const char* t) {
  std::vector<std::string> out;
  for (const auto& m : msgs) {
    if (Msg(m).str("t") == t) out.push_back(m);
  }
  return out;
}

}  // namespace hearth_test
