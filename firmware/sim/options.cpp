#include "options.h"

#include <cstdlib>
#include <cstring>

namespace sim {

namespace {

bool toU32(const std::string& s, uint32_t* out) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  const unsigned long long v = strtoull(s.c_str(), nullptr, 10);
  if (v > 0xFFFFFFFFull) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool isHex12(const std::string& s) {
  if (s.size() != 12) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

void printUsage(FILE* f) {
  fprintf(f,
          "usage: hearth-board-sim --spec FILE (--pty-link PATH | --no-serial) [options]\n"
          "\n"
          "A Hearth board built from the firmware core, on a pseudo-terminal and/or MQTT.\n"
          "\n"
          "  --spec FILE          entity spec (python -m edge.boards spec --board NAME)\n"
          "  --board-id HEX12     board id, 12 lower-case hex digits (default a1b2c3d4e5f6)\n"
          "  --pty-link PATH      create a pty (raw, 115200) and a symlink to it at PATH\n"
          "  --no-serial          no serial link at all\n"
          "  --nvs FILE           key=value file persisting provisioning and the boot counter\n"
          "  --mqtt-host HOST     broker (overrides NVS); --mqtt-port N (default 1883)\n"
          "  --site NAME --user NAME --password PW   override NVS (user defaults to the board id)\n"
          "  --hb-ms N            serial heartbeat period (2000)\n"
          "  --tele-ms N          telemetry period (10000)\n"
          "  --sensor-ms N        sensor poll period (1000)\n"
          "  --ack-delay-ms N     hold every ack N ms (late-ack tests)\n"
          "  --drop-acks N        drop the first N acks (retry tests)\n"
          "  --backoff-max-ms N   MQTT reconnect backoff cap (5000; the firmware uses 60000)\n"
          "  --boot-noise         write ESP32 ROM boot text before each hello\n"
          "  --seed N             seed for jitter and noise (default: time)\n"
          "  --keep-running       keep running when stdin reaches EOF (default: quit)\n"
          "\n"
          "stdin, one command per line: press ID | long ID | double ID | set ID VALUE | unplug | plug |\n"
          "reboot | noise N | flip N | mqtt-kill | quit\n"
          "stdout, one event per line: ready pty=PATH board=ID | boot N | out ID VALUE | led MODE |\n"
          "prov ok site=S host=H | mqtt connected | mqtt disconnected | rx bad N | ack ID ok|err|dropped |\n"
          "unplugged | error TEXT\n");
}

bool parseOptions(int argc, char** argv, Options* o, std::string* err, bool* help) {
  *help = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string val;
    bool inlineVal = false;
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      val = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inlineVal = true;
    }
    auto need = [&](std::string* dst) {
      if (inlineVal) {
        *dst = val;
        return true;
      }
      if (i + 1 >= argc) {
        *err = arg + " needs a value";
        return false;
      }
      *dst = argv[++i];
      return true;
    };
    auto needU32 = [&](uint32_t* dst) {
      std::string s;
      if (!need(&s)) return false;
      if (!toU32(s, dst)) {
        *err = arg + " takes a whole number, got '" + s + "'";
        return false;
      }
      return true;
    };
    auto flag = [&](bool* dst) {
      if (inlineVal) {
        *err = arg + " takes no value";
        return false;
      }
      *dst = true;
      return true;
    };
    bool ok;
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return true;
    } else if (arg == "--spec") {
      ok = need(&o->spec);
    } else if (arg == "--board-id") {
      ok = need(&o->boardId);
    } else if (arg == "--pty-link") {
      ok = need(&o->ptyLink);
    } else if (arg == "--no-serial") {
      ok = flag(&o->noSerial);
    } else if (arg == "--nvs") {
      ok = need(&o->nvsFile);
    } else if (arg == "--mqtt-host") {
      ok = need(&o->mqttHost);
    } else if (arg == "--mqtt-port") {
      uint32_t p = 0;
      ok = needU32(&p);
      if (ok && (p == 0 || p > 65535)) {
        *err = "--mqtt-port must be 1..65535";
        ok = false;
      }
      o->mqttPort = static_cast<int>(p);
    } else if (arg == "--site") {
      ok = need(&o->site);
    } else if (arg == "--user") {
      ok = need(&o->user);
    } else if (arg == "--password") {
      ok = need(&o->password);
    } else if (arg == "--hb-ms") {
      ok = needU32(&o->hbMs);
    } else if (arg == "--tele-ms") {
      ok = needU32(&o->teleMs);
    } else if (arg == "--sensor-ms") {
      ok = needU32(&o->sensorMs);
    } else if (arg == "--ack-delay-ms") {
      ok = needU32(&o->ackDelayMs);
    } else if (arg == "--drop-acks") {
      ok = needU32(&o->dropAcks);
    } else if (arg == "--backoff-max-ms") {
      ok = needU32(&o->backoffMaxMs);
    } else if (arg == "--boot-noise") {
      ok = flag(&o->bootNoise);
    } else if (arg == "--keep-running") {
      ok = flag(&o->keepRunning);
    } else if (arg == "--seed") {
      ok = needU32(&o->seed);
      o->haveSeed = true;
    } else {
      *err = "unknown option " + arg + " (see --help)";
      return false;
    }
    if (!ok) return false;
  }
  if (o->spec.empty()) {
    *err = "--spec FILE is required (python -m edge.boards spec --board relay-board --out FILE)";
    return false;
  }
  if (!isHex12(o->boardId)) {
    *err = "--board-id must be 12 lower-case hex digits, got '" + o->boardId + "'";
    return false;
  }
  if (o->noSerial == !o->ptyLink.empty()) {
    *err = "give exactly one of --pty-link PATH and --no-serial";
    return false;
  }
  if (o->hbMs == 0 || o->teleMs == 0 || o->sensorMs == 0) {
    *err = "--hb-ms, --tele-ms and --sensor-ms must be above 0";
    return false;
  }
  if (o->backoffMaxMs < 1000) o->backoffMaxMs = 1000;
  return true;
}

}  // namespace sim
