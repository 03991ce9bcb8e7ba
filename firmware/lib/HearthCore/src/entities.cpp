#include "entities.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "json.h"

namespace hearth {

namespace {

const char* const kKindNames[] = {"switch",  "dimmer",      "lock",     "cover",     "button",
                                  "contact", "temperature", "humidity", "status_led"};
const char* const kDriverNames[] = {"gpio", "pwm", "dht22", "bme280", "led"};

enum Key { kId, kKind, kName, kArea, kUnit, kMin, kMax, kPin, kPin2, kDrv, kSens, kPtt, kInv, kKeyCount };
const char* const kKeys[kKeyCount] = {"id", "kind", "name", "area", "unit", "min", "max",
                                      "pin", "pin2", "drv", "sens", "ptt", "inv"};

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

void trim(const char*& s, size_t& n) {
  while (n > 0 && isSpace(*s)) {
    ++s;
    --n;
  }
  while (n > 0 && isSpace(s[n - 1])) --n;
}

bool equals(const char* s, size_t n, const char* word) { return strlen(word) == n && memcmp(s, word, n) == 0; }

// Copies a value into a fixed field; false if it does not fit.
bool copyText(char* dst, size_t cap, const char* s, size_t n) {
  if (n >= cap) return false;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return true;
}

bool parseDouble(const char* s, size_t n, double* out) {
  char tmp[32];
  if (n == 0 || n >= sizeof(tmp)) return false;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  char* end = nullptr;
  const double v = strtod(tmp, &end);
  if (end != tmp + n || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool parsePin(const char* s, size_t n, int* out) {
  if (n == 0 || n > 2) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  if (v > kMaxGpio) return false;
  *out = v;
  return true;
}

bool parseFlag(const char* s, size_t n, bool* out) {
  if (equals(s, n, "0")) {
    *out = false;
    return true;
  }
  if (equals(s, n, "1")) {
    *out = true;
    return true;
  }
  return false;
}

template <typename E, size_t N>
bool lookup(const char* const (&names)[N], const char* s, size_t n, E* out) {
  for (size_t i = 0; i < N; ++i) {
    if (equals(s, n, names[i])) {
      *out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}

bool isSharedBus(Driver d) { return d == Driver::Dht22 || d == Driver::Bme280; }

}  // namespace

const char* kindName(Kind k) { return kKindNames[static_cast<size_t>(k)]; }
const char* driverName(Driver d) { return kDriverNames[static_cast<size_t>(d)]; }

bool isOutput(Kind k) {
  return k == Kind::Switch || k == Kind::Dimmer || k == Kind::Lock || k == Kind::Cover || k == Kind::StatusLed;
}
bool isSensor(Kind k) { return k == Kind::Temperature || k == Kind::Humidity; }
bool isBinary(Kind k) {
  return k == Kind::Switch || k == Kind::Lock || k == Kind::Cover || k == Kind::Button || k == Kind::Contact ||
         k == Kind::StatusLed;
}

bool validEntityId(const char* s, size_t n) {
  if (n == 0 || n > kMaxEntityId) return false;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

bool EntityTable::fail(int lineNo, const char* fmt, const char* arg) {
  char what[120];
  snprintf(what, sizeof(what), fmt, arg);
  if (lineNo > 0) {
    snprintf(err_, sizeof(err_), "entity spec line %d: %s", lineNo, what);
  } else {
    snprintf(err_, sizeof(err_), "entity spec: %s", what);
  }
  count_ = 0;
  profile_[0] = '\0';
  return false;
}

bool EntityTable::load(const char* text) { return load(text, text == nullptr ? 0 : strlen(text)); }

bool EntityTable::load(const char* text, size_t len) {
  count_ = 0;
  profile_[0] = '\0';
  err_[0] = '\0';
  if (text == nullptr) return fail(0, "%sno text", "");
  if (memchr(text, '\0', len) != nullptr) return fail(0, "%scontains a NUL byte", "");
  size_t pos = 0;
  int lineNo = 0;
  while (pos < len) {
    size_t end = pos;
    while (end < len && text[end] != '\n') ++end;
    ++lineNo;
    if (!parseLine(text + pos, end - pos, lineNo)) return false;
    pos = end + 1;
  }
  return true;
}

bool EntityTable::parseLine(const char* line, size_t len, int lineNo) {
  trim(line, len);
  if (len == 0 || line[0] == '#') return true;
  const char* eq = static_cast<const char*>(memchr(line, '=', len));
  if (eq == nullptr) {
    char shown[41];
    copyText(shown, sizeof(shown), line, len < 40 ? len : 40);
    return fail(lineNo, "'%s' is not key=value", shown);
  }
  const size_t keyLen = static_cast<size_t>(eq - line);
  const bool board = equals(line, keyLen, "profile") || equals(line, keyLen, "status_led");
  if (!board) return parseEntity(line, len, lineNo);
  const char* val = eq + 1;
  size_t valLen = len - keyLen - 1;
  trim(val, valLen);
  if (memchr(val, ';', valLen) != nullptr || memchr(val, '=', valLen) != nullptr) {
    return fail(lineNo, "%s= takes a single value on its own line", equals(line, keyLen, "profile") ? "profile" : "status_led");
  }
  if (equals(line, keyLen, "profile")) {
    if (profile_[0] != '\0') return fail(lineNo, "%sprofile is set twice", "");
    if (valLen == 0 || valLen > kMaxProfile) return fail(lineNo, "%sprofile must be 1-32 characters", "");
    for (size_t i = 0; i < valLen; ++i) {
      const char c = val[i];
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
        return fail(lineNo, "%sprofile may only use a-z, 0-9, _ and -", "");
      }
    }
    return copyText(profile_, sizeof(profile_), val, valLen);
  }
  int pin = 0;
  if (!parsePin(val, valLen, &pin)) return fail(lineNo, "%sstatus_led is not a GPIO number 0..48", "");
  return addStatusLed(pin, lineNo);
}

bool EntityTable::addStatusLed(int pin, int lineNo) {
  Entity e{};
  copyText(e.id, sizeof(e.id), kStatusLedId, strlen(kStatusLedId));
  copyText(e.name, sizeof(e.name), "Status LED", 10);
  e.kind = Kind::StatusLed;
  e.drv = Driver::Led;
  e.pin = pin;
  e.pin2 = -1;
  bool seen[kKeyCount] = {};
  seen[kId] = seen[kKind] = seen[kPin] = seen[kDrv] = true;
  return validate(e, lineNo, seen);
}

bool EntityTable::parseEntity(const char* line, size_t len, int lineNo) {
  Entity e{};
  bool seen[kKeyCount] = {};
  size_t pos = 0;
  while (pos <= len) {
    size_t end = pos;
    while (end < len && line[end] != ';') ++end;
    const char* part = line + pos;
    size_t partLen = end - pos;
    pos = end + 1;
    trim(part, partLen);
    if (partLen == 0) continue;  // tolerate ";;" and a trailing ";"
    const char* eq = static_cast<const char*>(memchr(part, '=', partLen));
    if (eq == nullptr) {
      char shown[41];
      copyText(shown, sizeof(shown), part, partLen < 40 ? partLen : 40);
      return fail(lineNo, "'%s' is not key=value", shown);
    }
    const char* key = part;
    size_t keyLen = static_cast<size_t>(eq - part);
    const char* val = eq + 1;
    size_t valLen = partLen - keyLen - 1;
    trim(key, keyLen);
    trim(val, valLen);
    Key k = kKeyCount;
    char keyText[24];
    copyText(keyText, sizeof(keyText), key, keyLen < sizeof(keyText) ? keyLen : sizeof(keyText) - 1);
    if (!lookup(kKeys, key, keyLen, &k)) return fail(lineNo, "unknown key '%s'", keyText);
    if (seen[k]) return fail(lineNo, "key '%s' given twice", keyText);
    seen[k] = true;
    if (memchr(val, '=', valLen) != nullptr) return fail(lineNo, "value of '%s' contains '='", keyText);
    bool good = true;
    switch (k) {
      case kId: good = validEntityId(val, valLen) && copyText(e.id, sizeof(e.id), val, valLen); break;
      case kKind: good = lookup(kKindNames, val, valLen, &e.kind); break;
      case kName: good = copyText(e.name, sizeof(e.name), val, valLen); break;
      case kArea: good = copyText(e.area, sizeof(e.area), val, valLen); break;
      case kUnit: good = copyText(e.unit, sizeof(e.unit), val, valLen); break;
      case kMin: good = parseDouble(val, valLen, &e.min); break;
      case kMax: good = parseDouble(val, valLen, &e.max); break;
      case kPin: good = parsePin(val, valLen, &e.pin); break;
      case kPin2: good = parsePin(val, valLen, &e.pin2); break;
      case kDrv: good = lookup(kDriverNames, val, valLen, &e.drv); break;
      case kSens: good = parseFlag(val, valLen, &e.sens); break;
      case kPtt: good = parseFlag(val, valLen, &e.ptt); break;
      case kInv: good = parseFlag(val, valLen, &e.inv); break;
      case kKeyCount: break;
    }
    if (!good) {
      static const char* const kWhy[kKeyCount] = {
          "id must match [a-z0-9_]{1,24}", "unknown kind",       "name is longer than 48 bytes",
          "area is longer than 32 bytes",  "unit is longer than 8 bytes", "min is not a number",
          "max is not a number",           "pin is not a GPIO number 0..48", "pin2 is not a GPIO number 0..48",
          "unknown drv (gpio, pwm, dht22, bme280, led)", "sens must be 0 or 1", "ptt must be 0 or 1",
          "inv must be 0 or 1"};
      return fail(lineNo, "%s", kWhy[k]);
    }
  }
  if (!seen[kId]) return fail(lineNo, "%smissing id", "");
  if (!seen[kKind]) return fail(lineNo, "%smissing kind", "");
  if (!seen[kPin2]) e.pin2 = -1;
  return validate(e, lineNo, seen);
}

bool EntityTable::validate(Entity& e, int lineNo, const bool* seen) {
  if (count_ >= kMaxEntities) return fail(lineNo, "%smore than 16 entities (the status LED counts as one)", "");
  if (e.kind == Kind::StatusLed && statusLed() >= 0) return fail(lineNo, "%sa board has one status LED", "");
  if (find(e.id) >= 0) return fail(lineNo, "id '%s' is used twice", e.id);
  if (e.name[0] == '\0') copyText(e.name, sizeof(e.name), e.id, strlen(e.id));
  // Missing drv: the kind's only sensible driver (the spec's literal default gpio cannot dim or blink).
  if (!seen[kDrv]) {
    if (isSensor(e.kind)) return fail(lineNo, "a %s needs drv=dht22 or drv=bme280", kindName(e.kind));
    e.drv = e.kind == Kind::Dimmer ? Driver::Pwm : e.kind == Kind::StatusLed ? Driver::Led : Driver::Gpio;
  }
  bool drvOk;
  switch (e.kind) {
    case Kind::Dimmer: drvOk = e.drv == Driver::Pwm; break;
    case Kind::Temperature:
    case Kind::Humidity: drvOk = isSharedBus(e.drv); break;
    case Kind::StatusLed: drvOk = e.drv == Driver::Led || e.drv == Driver::Gpio; break;
    default: drvOk = e.drv == Driver::Gpio; break;
  }
  if (!drvOk) return fail(lineNo, "drv=%s cannot drive this kind", driverName(e.drv));

  double lo = 0, hi = 1;
  if (e.kind == Kind::Dimmer || e.kind == Kind::Humidity) hi = 100;
  if (e.kind == Kind::Temperature) {
    lo = -40;
    hi = 80;
  }
  if (!seen[kMin]) e.min = lo;
  if (!seen[kMax]) e.max = hi;
  if (isBinary(e.kind) && (e.min != 0 || e.max != 1)) return fail(lineNo, "a %s is always min=0;max=1", kindName(e.kind));
  if (!(e.min < e.max)) return fail(lineNo, "%smin must be below max", "");
  if ((e.kind == Kind::Dimmer || e.kind == Kind::Humidity) && (e.min < 0 || e.max > 100)) {
    return fail(lineNo, "a %s is a percentage: min/max within 0..100", kindName(e.kind));
  }
  if (!seen[kPin]) return fail(lineNo, "%smissing pin", "");
  if (e.drv == Driver::Bme280) {
    if (e.pin2 < 0) return fail(lineNo, "%sbme280 needs pin2 (SCL; pin is SDA)", "");
    if (e.pin2 == e.pin) return fail(lineNo, "%spin2 (SCL) must differ from pin (SDA)", "");
  } else if (e.pin2 >= 0) {
    return fail(lineNo, "%spin2 is only used by drv=bme280", "");
  }
  if (e.ptt && e.kind != Kind::Button) return fail(lineNo, "%sptt=1 applies to buttons only", "");

  // One device per pin, except several readings of one sensor (DHT22 temperature + humidity).
  for (size_t i = 0; i < count_; ++i) {
    const Entity& o = entities_[i];
    const bool clash = o.pin == e.pin || o.pin == e.pin2 || (o.pin2 >= 0 && (o.pin2 == e.pin || o.pin2 == e.pin2));
    if (!clash) continue;
    const bool shared = isSharedBus(e.drv) && o.drv == e.drv && o.pin == e.pin && o.pin2 == e.pin2;
    if (!shared) return fail(lineNo, "GPIO is already used by '%s'", o.id);
  }
  entities_[count_++] = e;
  return true;
}

int EntityTable::find(const char* id) const {
  for (size_t i = 0; i < count_; ++i) {
    if (strcmp(entities_[i].id, id) == 0) return static_cast<int>(i);
  }
  return -1;
}

int EntityTable::statusLed() const {
  for (size_t i = 0; i < count_; ++i) {
    if (entities_[i].kind == Kind::StatusLed) return static_cast<int>(i);
  }
  return -1;
}

void writeDescriptor(JsonWriter& w, const Entity& e) {
  w.beginObject()
      .field("id", e.id)
      .field("kind", kindName(e.kind))
      .field("name", e.name)
      .field("area", e.area)
      .field("unit", e.unit)
      .fieldNum("min", e.min)
      .fieldNum("max", e.max);
  if (e.sens) w.fieldInt("sens", 1);
  if (e.ptt) w.fieldInt("ptt", 1);
  w.endObject();
}

}  // namespace hearth
