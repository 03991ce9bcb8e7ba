#pragma once
#include <cstddef>
#include <cstdint>

#include "entities.h"

namespace hearth {

enum class PinMode : uint8_t { Output, Input, InputPullup, Pwm };
enum class SensorStatus : uint8_t { Ok, Pending, Failed };

// What the Board asks the Hal to connect with. The Hal owns Wi-Fi (the simulator has none).
struct MqttConnectParams {
  const char* ssid;
  const char* wifiPass;
  const char* host;
  uint16_t port;
  const char* clientId;   // hearth-<board>
  const char* user;
  const char* password;
  const char* willTopic;  // hearth/<site>/<board>/status
  const char* willPayload;  // offline
  bool willRetain;
  uint8_t willQos;
  uint16_t keepAliveS;
};

// Every piece of hardware the core touches. Two implementations: firmware/src/arduino_hal (ESP32) and
// firmware/sim/sim_hal (the simulator); the unit tests use a fake. None of these may block for long:
// the Board calls them from loop().
//
// MQTT contract: mqttConnect() only starts an attempt and returns false if it failed at once (then no
// callback follows). Otherwise the Hal later calls Board::onMqttConnected() or Board::onMqttDisconnected(),
// and calls onMqttDisconnected() when an established connection drops. The Hal must not call back into the
// Board from inside one of these methods.
class Hal {
 public:
  virtual ~Hal() = default;

  virtual uint32_t nowMs() = 0;
  virtual uint32_t random32() = 0;

  // Serial link (framed bytes). Must not block: drop what does not fit (the framing resynchronises).
  virtual void serialWrite(const uint8_t* data, size_t len) = 0;

  virtual bool mqttConnect(const MqttConnectParams& p) = 0;
  virtual bool mqttPublish(const char* topic, const uint8_t* payload, size_t len, bool retained, uint8_t qos) = 0;
  virtual bool mqttSubscribe(const char* topic, uint8_t qos) = 0;
  virtual void mqttDisconnect() = 0;  // clean DISCONNECT (no Last Will); no callback follows

  virtual void gpioSetup(int pin, PinMode mode) = 0;
  virtual void gpioWrite(int pin, bool high) = 0;
  virtual bool gpioRead(int pin) = 0;
  virtual void pwmWrite(int pin, float duty) = 0;  // 0..1
  // A fresh or cached reading; Pending until the first one exists. The Hal spaces physical reads.
  virtual SensorStatus readSensor(const Entity& e, double* value) = 0;

  virtual bool nvsGet(const char* key, char* out, size_t cap) = 0;  // false if missing or too long
  virtual bool nvsSet(const char* key, const char* value) = 0;

  virtual uint32_t freeHeap() { return 0; }
  virtual int32_t rssi() { return 0; }

  // Observation hooks: no-ops on hardware, the simulator prints them for the tests that drive it.
  virtual void noteBoot(uint32_t boot) { (void)boot; }
  virtual void noteOutput(const Entity& e, double value) { (void)e; (void)value; }
  virtual void noteLed(const char* mode) { (void)mode; }
  virtual void noteProvisioned(const char* site, const char* host) { (void)site; (void)host; }
  virtual void noteMqtt(bool connected) { (void)connected; }
  virtual void noteRxBad(uint32_t total) { (void)total; }
  virtual void noteAck(const char* id, bool ok, bool dropped) { (void)id; (void)ok; (void)dropped; }
};

}  // namespace hearth
