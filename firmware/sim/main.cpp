// hearth-board-sim: the firmware core on a pty and/or MQTT, driven by a line protocol on stdin.
// Single-threaded: one poll() over stdin, the pty and the broker socket with a 5 ms timeout, then the
// board's tick(). Nothing blocks, as in the firmware's loop().
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "board.h"
#include "events.h"
#include "options.h"
#include "pty_link.h"
#include "sim_hal.h"
#include "sim_mqtt.h"

namespace {

volatile sig_atomic_t gStop = 0;
void onSignal(int) { gStop = 1; }

// What an ESP32 prints at 115200 after reset, before our code runs (no 0x00 in it).
const char kBootRom[] =
    "ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
    "configsip: 0, SPIWP:0xee\r\nclk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n"
    "mode:DIO, clock div:2\r\nload:0x3fff0030,len:1184\r\nload:0x40078000,len:13232\r\nload:0x40080400,len:3028\r\n"
    "entry 0x400805e4\r\n";

class Simulator {
 public:
  Simulator(const sim::Options& o, std::string spec)
      : opts_(o), spec_(std::move(spec)), hal_(o, table_, pty_, mqtt_) {}

  int run();

 private:
  bool boot();
  void powerOff();
  void control(const std::string& line);
  void readStdin();

  const sim::Options& opts_;
  std::string spec_;
  hearth::EntityTable table_;
  sim::PtyLink pty_;
  sim::SimMqtt mqtt_;
  sim::SimHal hal_;
  hearth::MqttCreds overrides_{};
  std::unique_ptr<hearth::Board> board_;
  std::string stdinBuf_;
  bool stdinOpen_ = true;
  bool quit_ = false;
};

bool Simulator::boot() {
  hal_.powerOn();
  if (opts_.bootNoise) pty_.write(reinterpret_cast<const uint8_t*>(kBootRom), sizeof(kBootRom) - 1);
  hearth::BoardConfig cfg;
  cfg.boardId = opts_.boardId.c_str();
  cfg.hbMs = opts_.hbMs;
  cfg.teleMs = opts_.teleMs;
  cfg.sensorMs = opts_.sensorMs;
  cfg.ackDelayMs = opts_.ackDelayMs;
  cfg.dropAcks = opts_.dropAcks;
  cfg.backoffCapMs = opts_.backoffMaxMs;
  cfg.overrides = &overrides_;
  board_.reset(new hearth::Board(hal_));
  mqtt_.setBoard(board_.get());
  if (!board_->begin(spec_.data(), spec_.size(), cfg)) {
    fprintf(stderr, "hearth-board-sim: %s\n", board_->error());
    return false;
  }
  return true;
}

// Power loss: the TCP connection just dies (the broker publishes the Last Will), RAM is gone.
void Simulator::powerOff() {
  if (board_ && board_->mqttState() == hearth::MqttState::Connected) sim::emit("mqtt disconnected");
  mqtt_.setBoard(nullptr);
  mqtt_.drop();
  board_.reset();
}

void Simulator::control(const std::string& line) {
  std::istringstream in(line);
  std::string cmd, arg, extra;
  in >> cmd >> arg;
  std::string err;
  if (cmd.empty()) return;
  if (cmd == "press" || cmd == "long" || cmd == "double") {
    std::vector<std::pair<bool, uint32_t>> script;
    if (cmd == "press") script = {{true, 120}};
    if (cmd == "long") script = {{true, 1500}};
    if (cmd == "double") script = {{true, 100}, {false, 150}, {true, 100}};
    if (!hal_.press(arg, script, &err)) sim::emit("error %s", err.c_str());
  } else if (cmd == "set") {
    in >> extra;
    char* end = nullptr;
    const double v = strtod(extra.c_str(), &end);
    if (extra.empty() || *end != '\0') {
      sim::emit("error usage: set ID VALUE");
    } else if (!hal_.setValue(arg, v, &err)) {
      sim::emit("error %s", err.c_str());
    }
  } else if (cmd == "unplug") {
    // The USB cable's data side: the port vanishes, the board keeps running (on its own supply), so an
    // MQTT session stays up. `plug` then re-powers it, as plugging a USB-powered board back in would.
    pty_.close();
    sim::emit("unplugged");
  } else if (cmd == "plug" || cmd == "reboot") {
    powerOff();
    if (cmd == "plug" && !opts_.noSerial && !pty_.isOpen()) {
      if (!pty_.open(opts_.ptyLink, &err)) {
        sim::emit("error %s", err.c_str());
        return;
      }
    }
    if (!boot()) {
      quit_ = true;
      return;
    }
    if (cmd == "plug") sim::emit("ready pty=%s board=%s", opts_.noSerial ? "-" : opts_.ptyLink.c_str(), opts_.boardId.c_str());
  } else if (cmd == "noise") {
    const long n = strtol(arg.c_str(), nullptr, 10);
    if (n <= 0 || n > 1000000) {
      sim::emit("error usage: noise N (1..1000000)");
      return;
    }
    std::vector<uint8_t> junk(static_cast<size_t>(n));
    for (auto& b : junk) b = static_cast<uint8_t>(hal_.random32());
    pty_.write(junk.data(), junk.size());
  } else if (cmd == "flip") {
    const long n = strtol(arg.c_str(), nullptr, 10);
    if (n <= 0 || n > 1000000) {
      sim::emit("error usage: flip N (1..1000000)");
      return;
    }
    hal_.flipFrames(static_cast<int>(n));
  } else if (cmd == "mqtt-kill") {
    mqtt_.kill();
  } else if (cmd == "quit") {
    quit_ = true;
  } else {
    sim::emit("error unknown command: %s", cmd.c_str());
  }
}

void Simulator::readStdin() {
  char buf[4096];
  const ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
  if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
    stdinOpen_ = false;
    if (!opts_.keepRunning) {
      quit_ = true;  // the driving test is gone: do not linger
      fprintf(stderr, "hearth-board-sim: stdin closed, quitting (--keep-running keeps the board up without it)\n");
    }
    return;
  }
  if (n < 0) return;
  stdinBuf_.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = stdinBuf_.find('\n')) != std::string::npos && !quit_) {
    std::string line = stdinBuf_.substr(0, nl);
    stdinBuf_.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    control(line);
  }
}

int Simulator::run() {
  if (!table_.load(spec_.data(), spec_.size())) {
    fprintf(stderr, "hearth-board-sim: %s\n", table_.error());
    return 1;
  }
  std::string err;
  if (!hal_.loadNvs(&err)) {
    fprintf(stderr, "hearth-board-sim: %s\n", err.c_str());
    return 1;
  }
  snprintf(overrides_.host, sizeof(overrides_.host), "%s", opts_.mqttHost.c_str());
  snprintf(overrides_.site, sizeof(overrides_.site), "%s", opts_.site.c_str());
  snprintf(overrides_.user, sizeof(overrides_.user), "%s", opts_.user.c_str());
  snprintf(overrides_.mqpass, sizeof(overrides_.mqpass), "%s", opts_.password.c_str());
  overrides_.port = static_cast<uint16_t>(opts_.mqttPort);
  if (!opts_.noSerial && !pty_.open(opts_.ptyLink, &err)) {
    fprintf(stderr, "hearth-board-sim: %s\n", err.c_str());
    return 1;
  }
  if (!boot()) return 1;
  if (!opts_.mqttHost.empty() && opts_.site.empty() && !board_->provisioned()) {
    fprintf(stderr, "hearth-board-sim: --mqtt-host without --site (and no site in NVS): MQTT stays off\n");
  }
  sim::emit("ready pty=%s board=%s", opts_.noSerial ? "-" : opts_.ptyLink.c_str(), opts_.boardId.c_str());

  uint8_t buf[4096];
  while (!quit_ && !gStop) {
    pollfd fds[3];
    nfds_t n = 0;
    int inIdx = -1, ptyIdx = -1, mqIdx = -1;
    if (stdinOpen_) {
      inIdx = static_cast<int>(n);
      fds[n++] = {STDIN_FILENO, POLLIN, 0};
    }
    if (pty_.isOpen() && pty_.attached()) {
      ptyIdx = static_cast<int>(n);
      fds[n++] = {pty_.fd(), POLLIN, 0};
    }
    if (mqtt_.fd() >= 0) {
      mqIdx = static_cast<int>(n);
      fds[n++] = {mqtt_.fd(), static_cast<short>(POLLIN | (mqtt_.wantWrite() ? POLLOUT : 0)), 0};
    }
    if (poll(fds, n, 5) < 0 && errno != EINTR) {
      perror("hearth-board-sim: poll");
      break;
    }
    if (inIdx >= 0 && (fds[inIdx].revents & (POLLIN | POLLHUP | POLLERR))) readStdin();
    if (quit_) break;
    // Read the pty when poll says so, and probe it when no host has it open (see PtyLink).
    if (pty_.isOpen() && (ptyIdx < 0 || fds[ptyIdx].revents != 0)) {
      const size_t got = pty_.read(buf, sizeof(buf));
      if (got > 0 && board_) board_->onSerialBytes(buf, got, hal_.nowMs());
    }
    if (mqIdx >= 0) mqtt_.service(fds[mqIdx].revents);
    const uint32_t now = hal_.nowMs();
    hal_.service(now);
    if (board_) board_->tick(now);
  }
  powerOff();  // like pulling the plug: the broker publishes our Last Will
  pty_.close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sim::Options opts;
  std::string err;
  bool help = false;
  if (!sim::parseOptions(argc, argv, &opts, &err, &help)) {
    fprintf(stderr, "hearth-board-sim: %s\n", err.c_str());
    sim::printUsage(stderr);
    return 2;
  }
  if (help) {
    sim::printUsage(stdout);
    return 0;
  }
  std::ifstream f(opts.spec, std::ios::binary);
  if (!f) {
    fprintf(stderr, "hearth-board-sim: cannot read the entity spec %s\n", opts.spec.c_str());
    return 2;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Simulator s(opts, ss.str());
  return s.run();
}
