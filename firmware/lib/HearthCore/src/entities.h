#pragma once
#include <cstddef>
#include <cstdint>

namespace hearth {

class JsonWriter;

enum class Kind : uint8_t { Switch, Dimmer, Lock, Cover, Button, Contact, Temperature, Humidity, StatusLed };
enum class Driver : uint8_t { Gpio, Pwm, Dht22, Bme280, Led };

const char* kindName(Kind k);
const char* driverName(Driver d);
bool isOutput(Kind k);   // accepts set/toggle/led
bool isSensor(Kind k);   // polled through Hal::readSensor
bool isBinary(Kind k);   // value is 0 or 1

constexpr size_t kMaxEntityId = 24;
constexpr size_t kMaxEntityName = 48;
constexpr size_t kMaxEntityArea = 32;
constexpr size_t kMaxEntityUnit = 8;
constexpr size_t kMaxProfile = 32;
constexpr int kMaxGpio = 48;  // ESP32-S3 has the most: GPIO0..48
constexpr const char* kStatusLedId = "status_led";

struct Entity {
  char id[kMaxEntityId + 1];
  char name[kMaxEntityName + 1];
  char area[kMaxEntityArea + 1];
  char unit[kMaxEntityUnit + 1];
  Kind kind;
  Driver drv;
  double min;
  double max;
  int pin;
  int pin2;  // BME280 SCL; -1 when unused
  bool sens;
  bool ptt;
  bool inv;
};

// The board's entities, parsed from the entity spec text of docs/protocol.md. `status_led=PIN` becomes an
// entity with id "status_led" (kind status_led, driver led) so the agent can address it with `a: led`;
// it counts towards the 16.
class EntityTable {
 public:
  static constexpr size_t kMaxEntities = 16;

  // Replaces the table. On failure the table is empty and error() says which line and why.
  bool load(const char* text, size_t len);
  bool load(const char* text);
  const char* error() const { return err_; }

  size_t size() const { return count_; }
  const Entity& operator[](size_t i) const { return entities_[i]; }
  int find(const char* id) const;  // index or -1
  int statusLed() const;           // index of the first status_led entity or -1
  const char* profile() const { return profile_; }

 private:
  bool parseLine(const char* line, size_t len, int lineNo);
  bool parseEntity(const char* line, size_t len, int lineNo);
  bool validate(Entity& e, int lineNo, const bool* seen);
  bool addStatusLed(int pin, int lineNo);
  bool fail(int lineNo, const char* fmt, const char* arg = "");

  Entity entities_[kMaxEntities];
  size_t count_ = 0;
  char profile_[kMaxProfile + 1] = "";
  char err_[160] = "";
};

// One `hello.entities` item: id, kind, name, area, unit, min, max always; sens/ptt only when set.
void writeDescriptor(JsonWriter& w, const Entity& e);

// [a-z0-9_]{1,24}
bool validEntityId(const char* s, size_t n);

}  // namespace hearth
