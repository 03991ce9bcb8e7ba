#pragma once
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "entities.h"
#include "hal.h"
#include "options.h"
#include "pty_link.h"
#include "sim_mqtt.h"

namespace sim {

// The simulated hardware: GPIO levels, sensors, NVS (optionally a file), the pty and the MQTT client.
// It outlives Board instances, as hardware outlives a reboot.
class SimHal : public hearth::Hal {
 public:
  SimHal(const Options& opts, const hearth::EntityTable& table, PtyLink& pty, SimMqtt& mqtt);

  // Loads the NVS file, if any; false with a message if it exists but cannot be read.
  bool loadNvs(std::string* err);
  // Input pins at their resting levels before a board boots.
  void powerOn();

  // Control channel.
  bool press(const std::string& id, const std::vector<std::pair<bool, uint32_t>>& script, std::string* err);
  bool setValue(const std::string& id, double v, std::string* err);
  void service(uint32_t now);  // applies scheduled pin changes

  // hearth::Hal
  uint32_t nowMs() override;
  uint32_t random32() override { return static_cast<uint32_t>(rng_()); }
  void serialWrite(const uint8_t* data, size_t len) override;
  // `flip N`: the next N frames leave with one random bit flipped inside them (a noisy cable).
  void flipFrames(int n) { flipNext_ = n; }
  bool mqttConnect(const hearth::MqttConnectParams& p) override { return mqtt_.connect(p); }
  bool mqttPublish(const char* topic, const uint8_t* payload, size_t len, bool retained, uint8_t qos) override {
    return mqtt_.publish(topic, payload, len, retained, qos);
  }
  bool mqttSubscribe(const char* topic, uint8_t qos) override { return mqtt_.subscribe(topic, qos); }
  void mqttDisconnect() override { mqtt_.disconnect(); }
  void gpioSetup(int, hearth::PinMode) override {}
  void gpioWrite(int pin, bool high) override { level_[pin] = high; }
  bool gpioRead(int pin) override { return level_[pin]; }
  void pwmWrite(int, float) override {}
  hearth::SensorStatus readSensor(const hearth::Entity& e, double* value) override;
  bool nvsGet(const char* key, char* out, size_t cap) override;
  bool nvsSet(const char* key, const char* value) override;
  uint32_t freeHeap() override { return 187000; }
  int32_t rssi() override { return -55; }

  void noteBoot(uint32_t boot) override;
  void noteOutput(const hearth::Entity& e, double value) override;
  void noteLed(const char* mode) override;
  void noteProvisioned(const char* site, const char* host) override;
  void noteMqtt(bool connected) override;
  void noteRxBad(uint32_t total) override;
  void noteAck(const char* id, bool ok, bool dropped) override;

 private:
  struct PinChange {
    uint32_t at;
    int pin;
    bool level;
  };
  bool saveNvs();
  const hearth::Entity* entity(const std::string& id, std::string* err) const;

  const Options& opts_;
  const hearth::EntityTable& table_;
  PtyLink& pty_;
  SimMqtt& mqtt_;
  std::mt19937 rng_;
  int flipNext_ = 0;
  uint64_t startMs_ = 0;
  std::map<int, bool> level_;
  std::map<std::string, double> logical_;  // contacts and sensors: the value the outside world has
  std::map<std::string, double> outputs_;  // last printed output values
  std::map<std::string, std::string> nvs_;
  std::vector<PinChange> changes_;
};

}  // namespace sim
