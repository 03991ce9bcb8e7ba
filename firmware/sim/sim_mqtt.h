#pragma once
#include <cstddef>
#include <cstdint>

#include "hal.h"

struct mosquitto;
struct mosquitto_message;

namespace hearth {
class Board;
}

namespace sim {

// libmosquitto driven from the simulator's poll() loop (mosquitto_loop_read/write/misc on our own
// schedule, never a blocking call or a second thread). One client instance per connection attempt, so a
// stale callback from an abandoned attempt can never reach the Board.
class SimMqtt {
 public:
  SimMqtt();
  ~SimMqtt();
  void setBoard(hearth::Board* b) { board_ = b; }

  bool connect(const hearth::MqttConnectParams& p);
  bool publish(const char* topic, const uint8_t* payload, size_t len, bool retained, uint8_t qos);
  bool subscribe(const char* topic, uint8_t qos);
  void disconnect();  // clean DISCONNECT: the broker discards the Last Will
  void kill();        // the TCP connection dies without DISCONNECT: the broker publishes the Last Will
  void drop();        // forget the client without a word (power loss); the broker sees the socket close
  bool connected() const { return connected_; }

  int fd() const;
  bool wantWrite() const;
  void service(short revents);  // after poll(): read, write, keepalive

 private:
  static void onConnect(mosquitto* m, void* self, int rc);
  static void onDisconnect(mosquitto* m, void* self, int rc);
  static void onMessage(mosquitto* m, void* self, const mosquitto_message* msg);

  mosquitto* m_ = nullptr;
  hearth::Board* board_ = nullptr;
  bool connected_ = false;
};

}  // namespace sim
