#include "message.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace hearth {

namespace {

const char* const kAckErrors[] = {"", "unknown_entity", "read_only", "bad_value", "bad_action", "busy", "bad_message"};
const char* const kGestures[] = {"", "press", "long", "double"};
const char* const kLedModes[] = {"idle", "listening", "thinking", "speaking", "error"};

void head(JsonWriter& w, const char* type) { w.beginObject().fieldInt("v", kProtocolVersion).field("t", type); }

size_t finish(JsonWriter& w) {
  w.endObject();
  return w.ok() ? w.size() : 0;
}

bool copyStr(char* dst, size_t cap, const char* s, size_t n) {
  if (n >= cap) return false;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return true;
}

// The command id: a string of 1..16 bytes. Anything else cannot be acked (the host could not match it).
bool readId(const JsonReader& r, char* out) {
  const char* s = nullptr;
  size_t n = 0;
  return r.getString("id", &s, &n) && n > 0 && copyStr(out, kMaxCmdId + 1, s, n);
}

Action parseAction(const char* s) {
  if (strcmp(s, "set") == 0) return Action::Set;
  if (strcmp(s, "toggle") == 0) return Action::Toggle;
  if (strcmp(s, "get") == 0) return Action::Get;
  if (strcmp(s, "led") == 0) return Action::Led;
  return Action::None;
}

void decodeCmd(const JsonReader& r, Incoming& out) {
  Command& c = out.cmd;
  memset(&c, 0, sizeof(c));
  out.hasId = readId(r, c.id);
  if (!out.hasId) {
    out.reason = "cmd without a usable id";
    return;
  }
  const JsonField* e = r.find("e");
  if (e != nullptr) {
    if (e->type != JsonType::String) {
      c.error = AckError::BadMessage;
    } else if (!copyStr(c.entity, sizeof(c.entity), e->str, e->strLen)) {
      c.error = AckError::UnknownEntity;  // longer than any entity id can be
    }
  }
  const char* a = nullptr;
  if (r.getString("a", &a)) c.action = parseAction(a);
  if (c.action == Action::None && c.error == AckError::None) c.error = AckError::BadAction;
  // `e` may be left out only for `led`: the board's status LED is meant.
  if (e == nullptr && c.action != Action::Led && c.error == AckError::None) c.error = AckError::BadMessage;
  c.hasVal = r.getNumber("val", &c.val);  // anything but a number (bool, string, null) counts as missing
  const char* m = nullptr;
  size_t mn = 0;
  c.hasMode = r.getString("mode", &m, &mn) && copyStr(c.mode, sizeof(c.mode), m, mn);
}

// Reads a string key into `dst`. Missing: `required` decides; wrong type: bad_message; too long: bad_value.
AckError provString(const JsonReader& r, const char* key, char* dst, size_t cap, bool required) {
  const JsonField* f = r.find(key);
  dst[0] = '\0';
  if (f == nullptr) return required ? AckError::BadMessage : AckError::None;
  if (f->type != JsonType::String) return AckError::BadMessage;
  return copyStr(dst, cap, f->str, f->strLen) ? AckError::None : AckError::BadValue;
}

void decodeProv(const JsonReader& r, Incoming& out) {
  Provision& p = out.prov;
  memset(&p, 0, sizeof(p));
  out.hasId = readId(r, p.id);
  if (!out.hasId) {
    out.reason = "prov without a usable id";
    return;
  }
  struct {
    const char* key;
    char* dst;
    size_t cap;
    bool required;
  } const keys[] = {{"ssid", p.ssid, sizeof(p.ssid), false}, {"pass", p.pass, sizeof(p.pass), false},
                    {"host", p.host, sizeof(p.host), true},  {"user", p.user, sizeof(p.user), false},
                    {"mqpass", p.mqpass, sizeof(p.mqpass), false}, {"site", p.site, sizeof(p.site), true}};
  AckError worst = AckError::None;
  for (const auto& k : keys) {
    const AckError e = provString(r, k.key, k.dst, k.cap, k.required);
    if (e == AckError::BadMessage || (e == AckError::BadValue && worst == AckError::None)) worst = e;
  }
  p.port = 1883;
  const JsonField* port = r.find("port");
  if (port != nullptr) {
    double v = -1;
    if (port->type == JsonType::Number) {
      v = port->number;
    } else if (port->type == JsonType::String && port->strLen > 0 && port->strLen <= 5 &&
               strspn(port->str, "0123456789") == port->strLen) {
      v = atoi(port->str);
    } else if (worst == AckError::None) {
      worst = AckError::BadMessage;
    }
    if (v >= 1 && v <= 65535 && v == std::floor(v)) {
      p.port = static_cast<uint16_t>(v);
    } else if (worst == AckError::None) {
      worst = AckError::BadValue;
    }
  }
  if (worst == AckError::None) {
    bool hostOk = p.host[0] != '\0';
    for (const char* h = p.host; *h; ++h) hostOk = hostOk && static_cast<unsigned char>(*h) > 0x20 && *h != '/';
    if (!hostOk || !validTopicName(p.site, strlen(p.site))) worst = AckError::BadValue;
  }
  p.error = worst;
}

}  // namespace

const char* ackErrorName(AckError e) { return kAckErrors[static_cast<size_t>(e)]; }
const char* gestureName(Gesture g) { return kGestures[static_cast<size_t>(g)]; }
const char* ledModeName(LedMode m) { return kLedModes[static_cast<size_t>(m)]; }

bool parseLedMode(const char* s, LedMode* out) {
  for (size_t i = 0; i < sizeof(kLedModes) / sizeof(kLedModes[0]); ++i) {
    if (strcmp(s, kLedModes[i]) == 0) {
      *out = static_cast<LedMode>(i);
      return true;
    }
  }
  return false;
}

bool validTopicName(const char* s, size_t n) {
  if (n == 0 || n > 32) return false;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

void decodeIncoming(const char* json, size_t len, JsonReader& r, Incoming& out) {
  out.type = MsgType::Invalid;
  out.hasId = false;
  out.reason = "";
  out.pingHello = false;
  if (!r.parse(json, len)) {
    out.reason = r.error();
    return;
  }
  double v = 0;
  if (!r.getNumber("v", &v) || v != kProtocolVersion) {
    out.reason = "missing or unsupported protocol version";
    return;
  }
  const char* t = nullptr;
  if (!r.getString("t", &t)) {
    out.reason = "missing type";
    return;
  }
  if (strcmp(t, "cmd") == 0) {
    out.type = MsgType::Cmd;
    decodeCmd(r, out);
  } else if (strcmp(t, "prov") == 0) {
    out.type = MsgType::Prov;
    decodeProv(r, out);
  } else if (strcmp(t, "ping") == 0) {
    out.type = MsgType::Ping;
    double n = 0;
    bool b = false;
    out.pingHello = (r.getNumber("hello", &n) && n != 0) || (r.getBool("hello", &b) && b);
  } else {
    out.reason = "unknown or board-only message type";
  }
}

size_t encodeHello(char* out, size_t cap, const HelloInfo& h, const EntityTable& table) {
  JsonWriter w(out, cap);
  head(w, "hello");
  w.field("board", h.board).field("fw", h.fw).field("profile", h.profile).fieldInt("boot", h.boot);
  w.key("entities").beginArray();
  for (size_t i = 0; i < table.size(); ++i) writeDescriptor(w, table[i]);
  w.endArray();
  return finish(w);
}

size_t encodeState(char* out, size_t cap, const char* entity, const Value& v) {
  JsonWriter w(out, cap);
  head(w, "state");
  w.field("e", entity).key("val");
  if (v.isText) {
    w.str(v.text);
  } else {
    w.num(v.num);
  }
  return finish(w);
}

size_t encodeEvent(char* out, size_t cap, const char* entity, Gesture g) {
  JsonWriter w(out, cap);
  head(w, "event");
  w.field("e", entity).field("ev", gestureName(g));
  return finish(w);
}

size_t encodeTele(char* out, size_t cap, const TeleInfo& t) {
  JsonWriter w(out, cap);
  head(w, "tele");
  w.fieldInt("seq", t.seq).fieldInt("up", t.up).fieldInt("heap", t.heap).fieldInt("rssi", t.rssi).fieldInt("bad", t.bad);
  return finish(w);
}

size_t encodeHb(char* out, size_t cap, uint32_t seq, uint32_t up) {
  JsonWriter w(out, cap);
  head(w, "hb");
  w.fieldInt("seq", seq).fieldInt("up", up);
  return finish(w);
}

size_t encodeAck(char* out, size_t cap, const AckRecord& a) {
  JsonWriter w(out, cap);
  head(w, "ack");
  w.field("id", a.id).key("ok").boolean(a.err == AckError::None);
  if (a.err != AckError::None) {
    w.field("err", ackErrorName(a.err));
  } else if (a.hasVal) {
    w.key("val");
    if (a.valIsText) {
      w.str(a.text);
    } else {
      w.num(a.num);
    }
  }
  return finish(w);
}

}  // namespace hearth
