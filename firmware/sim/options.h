#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace sim {

struct Options {
  std::string spec;
  std::string boardId = "a1b2c3d4e5f6";
  std::string ptyLink;
  bool noSerial = false;
  std::string nvsFile;
  std::string mqttHost;
  int mqttPort = 0;
  std::string site;
  std::string user;
  std::string password;
  uint32_t hbMs = 2000;
  uint32_t teleMs = 10000;
  uint32_t sensorMs = 1000;
  uint32_t ackDelayMs = 0;
  uint32_t dropAcks = 0;
  uint32_t backoffMaxMs = 5000;
  bool bootNoise = false;
  bool keepRunning = false;  // do not quit when stdin reaches EOF
  bool haveSeed = false;
  uint32_t seed = 0;
};

// Returns false with a message on bad usage; `help` is set for --help.
bool parseOptions(int argc, char** argv, Options* out, std::string* err, bool* help);
void printUsage(FILE* f);

}  // namespace sim
