#include "sim_hal.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

namespace sim {

using hearth::Entity;
using hearth::Kind;

void emit(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}

namespace {

uint64_t monotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

// NVS file values are escaped so a password with a newline or backslash survives a restart.
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[++i];
      out += n == 'n' ? '\n' : n == 'r' ? '\r' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

SimHal::SimHal(const Options& opts, const hearth::EntityTable& table, PtyLink& pty, SimMqtt& mqtt)
    : opts_(opts), table_(table), pty_(pty), mqtt_(mqtt), startMs_(monotonicMs()) {
  rng_.seed(opts.haveSeed ? opts.seed : static_cast<uint32_t>(time(nullptr)) ^ static_cast<uint32_t>(getpid()));
  for (size_t i = 0; i < table.size(); ++i) {
    const Entity& e = table[i];
    if (e.kind == Kind::Temperature) logical_[e.id] = 21.5;
    if (e.kind == Kind::Humidity) logical_[e.id] = 45;
    if (e.kind == Kind::Contact || e.kind == Kind::Button) logical_[e.id] = 0;
  }
}

uint32_t SimHal::nowMs() { return static_cast<uint32_t>(monotonicMs() - startMs_); }

void SimHal::powerOn() {
  changes_.clear();
  for (size_t i = 0; i < table_.size(); ++i) {
    const Entity& e = table_[i];
    if (e.kind == Kind::Button) logical_[e.id] = 0;  // nobody holds a button through a reboot
    if (e.kind == Kind::Contact || e.kind == Kind::Button) level_[e.pin] = (logical_[e.id] != 0) != e.inv;
  }
}

const Entity* SimHal::entity(const std::string& id, std::string* err) const {
  const int i = table_.find(id.c_str());
  if (i < 0) {
    *err = "unknown entity " + id;
    return nullptr;
  }
  return &table_[static_cast<size_t>(i)];
}

bool SimHal::press(const std::string& id, const std::vector<std::pair<bool, uint32_t>>& script, std::string* err) {
  const Entity* e = entity(id, err);
  if (e == nullptr) return false;
  if (e->kind != Kind::Button) {
    *err = id + " is not a button";
    return false;
  }
  uint32_t t = nowMs();
  for (const auto& step : script) {
    changes_.push_back({t, e->pin, step.first != e->inv});
    t += step.second;
  }
  changes_.push_back({t, e->pin, e->inv});  // released
  return true;
}

bool SimHal::setValue(const std::string& id, double v, std::string* err) {
  const Entity* e = entity(id, err);
  if (e == nullptr) return false;
  if (e->kind == Kind::Contact || e->kind == Kind::Button) {
    if (v != 0 && v != 1) {
      *err = id + " takes 0 or 1";
      return false;
    }
    logical_[e->id] = v;
    level_[e->pin] = (v != 0) != e->inv;
    return true;
  }
  if (hearth::isSensor(e->kind)) {
    logical_[e->id] = v;
    return true;
  }
  *err = id + " is an output: command it through the protocol";
  return false;
}

void SimHal::service(uint32_t now) {
  for (size_t i = 0; i < changes_.size();) {
    if (static_cast<int32_t>(now - changes_[i].at) >= 0) {
      level_[changes_[i].pin] = changes_[i].level;
      changes_.erase(changes_.begin() + static_cast<long>(i));
    } else {
      ++i;
    }
  }
}

hearth::SensorStatus SimHal::readSensor(const Entity& e, double* value) {
  auto it = logical_.find(e.id);
  if (it == logical_.end()) return hearth::SensorStatus::Failed;
  *value = it->second;
  return hearth::SensorStatus::Ok;
}

bool SimHal::loadNvs(std::string* err) {
  if (opts_.nvsFile.empty()) return true;
  std::ifstream in(opts_.nvsFile);
  if (!in) {
    if (access(opts_.nvsFile.c_str(), F_OK) != 0) return true;  // not there yet: a factory-new board
    *err = "cannot read " + opts_.nvsFile;
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    nvs_[line.substr(0, eq)] = unescape(line.substr(eq + 1));
  }
  return true;
}

bool SimHal::saveNvs() {
  if (opts_.nvsFile.empty()) return true;
  const std::string tmp = opts_.nvsFile + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << "# hearth-board-sim NVS (board " << opts_.boardId << ")\n";
    for (const auto& kv : nvs_) out << kv.first << '=' << escape(kv.second) << '\n';
    if (!out.flush()) return false;
  }
  return rename(tmp.c_str(), opts_.nvsFile.c_str()) == 0;  // atomic: a killed simulator never leaves half a file
}

bool SimHal::nvsGet(const char* key, char* out, size_t cap) {
  auto it = nvs_.find(key);
  if (it == nvs_.end() || it->second.size() >= cap) return false;
  snprintf(out, cap, "%s", it->second.c_str());
  return true;
}

bool SimHal::nvsSet(const char* key, const char* value) {
  nvs_[key] = value;
  return saveNvs();
}

void SimHal::noteBoot(uint32_t boot) { emit("boot %u", boot); }

void SimHal::noteOutput(const Entity& e, double value) {
  auto it = outputs_.find(e.id);
  const double last = it == outputs_.end() ? 0 : it->second;
  outputs_[e.id] = value;
  if (value != last) emit("out %s %g", e.id, value);
}

void SimHal::noteLed(const char* mode) { emit("led %s", mode); }

void SimHal::noteProvisioned(const char* site, const char* host) { emit("prov ok site=%s host=%s", site, host); }

void SimHal::noteMqtt(bool connected) { emit(connected ? "mqtt connected" : "mqtt disconnected"); }

void SimHal::noteRxBad(uint32_t total) { emit("rx bad %u", total); }

void SimHal::noteAck(const char* id, bool ok, bool dropped) { emit("ack %s %s", id, dropped ? "dropped" : ok ? "ok" : "err"); }

void SimHal::serialWrite(const uint8_t* data, size_t len) {
  if (flipNext_ <= 0 || len < 4) {
    pty_.write(data, len);
    return;
  }
  --flipNext_;
  std::vector<uint8_t> copy(data, data + len);
  // Inside the frame (not the 0x00 delimiters at either end): one bit, anywhere in the COBS body.
  const size_t at = 1 + static_cast<size_t>(random32()) % (len - 2);
  copy[at] = static_cast<uint8_t>(copy[at] ^ (1u << (random32() % 8)));
  pty_.write(copy.data(), copy.size());
  emit("flipped byte %zu of a %zu-byte frame", at, len);
}

}  // namespace sim
