#pragma once
#include <cstddef>
#include <cstdint>

#include "entities.h"
#include "json.h"

namespace hearth {

constexpr int kProtocolVersion = 1;
constexpr size_t kMaxCmdId = 16;

enum class Link : uint8_t { Serial, Mqtt };
enum class Action : uint8_t { None, Set, Toggle, Get, Led };
enum class AckError : uint8_t { None, UnknownEntity, ReadOnly, BadValue, BadAction, Busy, BadMessage };
enum class Gesture : uint8_t { None, Press, Long, Double };
// Status LED modes: what the agent shows (edge/protocol.py LED_MODES). Idle means the board's own status.
enum class LedMode : uint8_t { Idle, Listening, Thinking, Speaking, Error };

const char* ackErrorName(AckError e);
const char* gestureName(Gesture g);
const char* ledModeName(LedMode m);
bool parseLedMode(const char* s, LedMode* out);

// A state/ack value: a number, or text for the status LED's mode.
struct Value {
  bool isText = false;
  double num = 0;
  const char* text = nullptr;
  static Value number(double v) {
    Value x;
    x.num = v;
    return x;
  }
  static Value str(const char* t) {
    Value x;
    x.isText = true;
    x.text = t;
    return x;
  }
};

// Everything needed to (re)send an ack; also what the 16-entry result memory keeps per command id.
struct AckRecord {
  char id[kMaxCmdId + 1];
  AckError err;
  bool hasVal;
  bool valIsText;
  double num;
  char text[12];
};

// ------------------------------------------------------------------------------------------------ host -> board

enum class MsgType : uint8_t { Invalid, Cmd, Ping, Prov };

struct Command {
  char id[kMaxCmdId + 1];
  char entity[kMaxEntityId + 1];  // empty when absent
  Action action;
  bool hasVal;
  double val;
  bool hasMode;
  char mode[16];
  AckError error;  // None, or why it cannot run as sent (bad_message, bad_action, unknown_entity)
};

struct Provision {
  char id[kMaxCmdId + 1];
  char ssid[33];
  char pass[65];
  char host[65];
  uint16_t port;
  char user[33];
  char mqpass[65];
  char site[33];
  AckError error;  // None, bad_message (a required key missing or of the wrong type) or bad_value
};

struct Incoming {
  MsgType type;
  bool hasId;          // cmd/prov: without a usable id no ack can be sent (bad_message, dropped)
  const char* reason;  // why it is Invalid
  Command cmd;
  Provision prov;
  bool pingHello;
};

// Validates one message from the host. `reader` is scratch space (kept outside to keep stacks small).
void decodeIncoming(const char* json, size_t len, JsonReader& reader, Incoming& out);

// [a-z0-9_-]{1,32}: site and board names in topics.
bool validTopicName(const char* s, size_t n);

// ------------------------------------------------------------------------------------------------ board -> host
// Each returns the JSON length, or 0 if it does not fit in `cap`. With out == nullptr they only measure.

struct HelloInfo {
  const char* board;
  const char* fw;
  const char* profile;
  uint32_t boot;
};
struct TeleInfo {
  uint32_t seq;
  uint32_t up;
  uint32_t heap;
  int32_t rssi;
  uint32_t bad;
};

size_t encodeHello(char* out, size_t cap, const HelloInfo& h, const EntityTable& table);
size_t encodeState(char* out, size_t cap, const char* entity, const Value& v);
size_t encodeEvent(char* out, size_t cap, const char* entity, Gesture g);
size_t encodeTele(char* out, size_t cap, const TeleInfo& t);
size_t encodeHb(char* out, size_t cap, uint32_t seq, uint32_t up);
size_t encodeAck(char* out, size_t cap, const AckRecord& a);

}  // namespace hearth
