#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "board.h"
#include "fake_hal.h"

namespace hearth_test {

constexpr const char* kBoardId = "a1b2c3d4e5f6";

constexpr const char* kSpec =
    "profile=test-board\n"
    "status_led=2\n"
    "id=light;kind=switch;name=Light;area=kitchen;pin=26;inv=1\n"
    "id=dim;kind=dimmer;name=Dimmer;area=hall;unit=%;min=0;max=100;pin=25;drv=pwm\n"
    "id=door;kind=cover;name=Garage door;area=garage;pin=27;sens=1\n"
    "id=talk;kind=button;name=Talk;pin=13;ptt=1;inv=1\n"
    "id=btn;kind=button;name=Button;pin=14;inv=1\n"
    "id=contact;kind=contact;name=Door contact;pin=5\n"
    "id=temp;kind=temperature;name=Temp;unit=C;min=-40;max=80;pin=4;drv=dht22\n"
    "id=hum;kind=humidity;name=Humidity;unit=%;pin=4;drv=dht22\n";

class BoardTest : public ::testing::Test {
 protected:
  FakeHal hal;
  std::unique_ptr<Board> board{new Board(hal)};
  BoardConfig cfg;

  BoardTest() {
    hal.pins[13] = hal.pins[14] = true;  // active-low buttons at rest
    hal.pins[5] = false;                 // contact closed
    cfg.boardId = kBoardId;
  }

  void start(const char* spec = kSpec) {
    ASSERT_TRUE(board->begin(spec, strlen(spec), cfg)) << board->error();
  }

  // A fresh Board on the same Hal (and NVS): a reboot.
  void reboot() {
    board.reset(new Board(hal));
    start();
  }

  void provisionNvs(const char* site = "home") {
    hal.nvs["host"] = "10.0.0.2";
    hal.nvs["port"] = "1884";
    hal.nvs["site"] = site;
    hal.nvs["mqpass"] = "secret";
  }

  void send(const std::string& json) {
    uint8_t buf[kMaxWireFrame];
    const size_t n = FrameEncoder::encode(json.data(), json.size(), buf, sizeof(buf));
    ASSERT_GT(n, 0u);
    board->onSerialBytes(buf, n, hal.now);
  }

  void mqttSend(const std::string& json, const std::string& topic = "") {
    const std::string t = topic.empty() ? std::string("hearth/home/") + kBoardId + "/cmd" : topic;
    board->onMqttMessage(t.c_str(), reinterpret_cast<const uint8_t*>(json.data()), json.size());
  }

  void advance(uint32_t ms, uint32_t step = 5) {
    for (uint32_t t = 0; t < ms; t += step) {
      hal.now += step;
      board->tick(hal.now);
    }
  }

  // Connect with NVS credentials: first tick starts the attempt, the fake broker accepts.
  void connect() {
    board->tick(hal.now);
    ASSERT_EQ(board->mqttState(), MqttState::Connecting);
    board->onMqttConnected();
    ASSERT_EQ(board->mqttState(), MqttState::Connected);
  }

  std::vector<std::string> serial() { return hal.takeSerial(); }

  // The one message of type t among the serial output (fails if not exactly one).
  std::string only(const std::vector<std::string>& msgs, const char* t) {
    const auto found = ofType(msgs, t);
    EXPECT_EQ(found.size(), 1u) << t;
    return found.empty() ? std::string("{}") : found[0];
  }

  std::string cmd(const std::string& id, const std::string& e, const std::string& a, const std::string& extra = "") {
    return R"({"v":1,"t":"cmd","id":")" + id + R"(","e":")" + e + R"(","a":")" + a + "\"" + extra + "}";
  }
};

}  // namespace hearth_test
