#pragma once
#include <cstddef>
#include <cstdint>

#include "ack_memory.h"
#include "backoff.h"
#include "debounce.h"
#include "entities.h"
#include "frame.h"
#include "hal.h"
#include "json.h"
#include "message.h"
#include "version.h"

namespace hearth {

// Broker credentials and site, as provisioned (NVS keys ssid, pass, host, port, user, mqpass, site).
struct MqttCreds {
  char ssid[33];
  char pass[65];
  char host[65];
  uint16_t port;  // 0: not set
  char user[33];
  char mqpass[65];
  char site[33];
};

struct BoardConfig {
  const char* boardId = "";  // 12 lower-case hex digits (the Wi-Fi MAC)
  const char* fw = kFirmwareVersion;
  uint32_t hbMs = 2000;
  uint32_t teleMs = 10000;
  uint32_t sensorMs = 2000;
  uint32_t connectTimeoutMs = 30000;  // Wi-Fi association + TCP + CONNACK
  uint32_t backoffBaseMs = 1000;
  uint32_t backoffCapMs = 60000;
  uint32_t ackDelayMs = 0;  // test knob (simulator): hold every ack this long
  uint32_t dropAcks = 0;    // test knob (simulator): swallow the first N acks
  const MqttCreds* overrides = nullptr;  // non-empty fields replace the NVS values at boot
};

enum class MqttState : uint8_t { Disconnected, Connecting, Connected };

// The whole board behaviour, hardware-free: entity table and values, command execution with the
// 16-entry ack memory, serial framing, the MQTT session state machine, timers. Feed it time and bytes;
// it talks to the world only through the Hal. Nothing here blocks or allocates.
class Board final : private FrameSink {
 public:
  static constexpr uint32_t kCoverPulseMs = 500;    // covers are pulsed like the opener's wall button
  static constexpr uint32_t kStableLinkMs = 10000;  // a connection this old resets the backoff when it drops
  static constexpr uint32_t kHostSilentMs = 6000;   // serial host considered gone (3 missed heartbeats)

  explicit Board(Hal& hal);
  bool begin(const char* spec, size_t specLen, const BoardConfig& cfg);
  const char* error() const { return err_; }

  void tick(uint32_t nowMs);
  void onSerialBytes(const uint8_t* data, size_t len, uint32_t nowMs);
  void onMqttMessage(const char* topic, const uint8_t* payload, size_t len);
  void onMqttConnected();
  void onMqttDisconnected();

  MqttState mqttState() const { return mqtt_; }
  bool provisioned() const { return haveCreds_; }
  uint32_t bootCount() const { return boot_; }
  uint32_t badCount() const { return decoder_.bad() + badMessages_; }
  const EntityTable& entities() const { return table_; }
  double value(size_t i) const { return values_[i]; }
  LedMode ledMode() const { return led_; }
  const MqttCreds& creds() const { return creds_; }
  const char* topicPrefix() const { return prefix_; }  // hearth/<site>/<board>/

 private:
  static constexpr size_t kMax = EntityTable::kMaxEntities;
  struct DelayedAck {
    bool used;
    Link link;
    uint32_t due;
    AckRecord rec;
  };

  void onFrame(const char* json, size_t len) override;
  void handleMessage(const char* json, size_t len, Link from);
  void countBad();
  void noteBadIfChanged();

  // board_cmd.cpp
  void handleCommand(const Command& c, Link from);
  AckError execute(const Command& c, AckRecord& rec, int* changed);
  void handleProvision(const Provision& p, Link from);
  void sendAck(const AckRecord& rec, Link to);
  void transmitAck(const AckRecord& rec, Link to);
  void flushDelayedAcks(uint32_t now);

  // board_io.cpp
  void setupPins();
  void applyOutput(size_t i, double v);
  void sampleInputs(uint32_t now);
  void pollSensors();
  void finishPulses(uint32_t now);
  void updateLed(uint32_t now);

  // board.cpp
  void loadCreds();
  void buildTopics();
  void mqttTick(uint32_t now);
  void restartMqtt();
  void scheduleReconnect();
  void sendSerial(size_t jsonLen);
  bool publish(const char* suffix, const char* payload, size_t len, bool retained, uint8_t qos);
  void sendHello(bool serial, bool mqtt);
  void reportState(size_t i, bool serial, bool mqtt);
  void reportEvent(size_t i, Gesture g);
  void sendTele(bool serial, bool mqtt);
  void sendHb();
  Value valueOf(size_t i) const;
  uint32_t uptimeS() const { return (now_ - bootMs_) / 1000; }

  Hal& hal_;
  BoardConfig cfg_;
  bool begun_ = false;
  char boardId_[13] = "";
  char err_[200] = "";
  EntityTable table_;

  double values_[kMax];    // NaN: a sensor not read yet
  double reported_[kMax];  // last value sent in a state message (sensor hysteresis)
  double lastOn_[kMax];    // dimmer level a toggle returns to
  bool pulsing_[kMax];
  uint32_t pulseEnd_[kMax];
  Debouncer inputs_[kMax];
  LedMode led_ = LedMode::Idle;
  uint32_t ledEpoch_ = 0;
  bool ledLevel_ = false;

  FrameDecoder decoder_;
  JsonReader reader_;
  Incoming incoming_;
  AckMemory acks_;
  DelayedAck delayed_[AckMemory::kSize];
  uint32_t dropAcks_ = 0;

  char json_[kMaxMessage + 1];
  uint8_t wire_[kMaxWireFrame];
  char topic_[128];
  char prefix_[64] = "";  // hearth/<site>/<board>/
  char cmdTopic_[80] = "";
  char willTopic_[80] = "";
  char clientId_[24] = "";

  MqttCreds creds_;
  bool haveCreds_ = false;
  MqttState mqtt_ = MqttState::Disconnected;
  Backoff backoff_;
  uint32_t nextAttempt_ = 0;
  uint32_t connectStarted_ = 0;
  uint32_t connectedAt_ = 0;

  uint32_t now_ = 0;
  uint32_t bootMs_ = 0;
  uint32_t boot_ = 0;
  uint32_t hbSeq_ = 0;
  uint32_t teleSeq_ = 0;
  uint32_t badMessages_ = 0;
  uint32_t badNoted_ = 0;
  uint32_t hbDue_ = 0;
  uint32_t teleDue_ = 0;
  uint32_t sensorDue_ = 0;
  uint32_t sampleDue_ = 0;
  uint32_t hostSeenMs_ = 0;
  bool hostSeen_ = false;
};

}  // namespace hearth
