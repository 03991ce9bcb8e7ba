#pragma once
#include <Arduino.h>
#include <PubSubClient.h>
#include <Preferences.h>
#include <WiFi.h>
#if __has_include(<esp_random.h>)
#include <esp_random.h>  // IDF 5 (arduino-esp32 3.x) moved esp_random() here
#endif

#include "board.h"
#include "hal.h"

class DHT;
class Adafruit_BME280;

namespace hearth {

// The ESP32 Hal: Serial at 115200, Wi-Fi + PubSubClient, Preferences (NVS), GPIO, LEDC PWM, DHT22/BME280.
// poll() is called from loop() before Board::tick(): it feeds serial bytes to the Board and drives the
// network state machine, calling the Board's MQTT callbacks from there (never from inside a Hal method).
class ArduinoHal : public Hal {
 public:
  void begin();
  void attach(Board* b) { board_ = b; }
  void poll();
  void boardId(char out[13]);  // the Wi-Fi station MAC, as `esptool read-mac` prints it

  uint32_t nowMs() override { return millis(); }
  uint32_t random32() override { return esp_random(); }
  void serialWrite(const uint8_t* data, size_t len) override;
  bool mqttConnect(const MqttConnectParams& p) override;
  bool mqttPublish(const char* topic, const uint8_t* payload, size_t len, bool retained, uint8_t qos) override;
  bool mqttSubscribe(const char* topic, uint8_t qos) override;
  void mqttDisconnect() override;
  void gpioSetup(int pin, PinMode mode) override;
  void gpioWrite(int pin, bool high) override { digitalWrite(pin, high ? HIGH : LOW); }
  bool gpioRead(int pin) override { return digitalRead(pin) == HIGH; }
  void pwmWrite(int pin, float duty) override;
  SensorStatus readSensor(const Entity& e, double* value) override;
  bool nvsGet(const char* key, char* out, size_t cap) override;
  bool nvsSet(const char* key, const char* value) override;
  uint32_t freeHeap() override { return ESP.getFreeHeap(); }
  int32_t rssi() override { return WiFi.status() == WL_CONNECTED ? WiFi.RSSI() : 0; }

 private:
  enum class Net : uint8_t { Idle, WaitWifi, Connected };
  static constexpr int kMaxPwm = 6;      // the ESP32-C3 has 6 LEDC channels, the others more
  static constexpr int kMaxSensors = 4;  // distinct sensor devices (pins)

  struct SensorSlot {
    int pin = -1;
    Driver drv = Driver::Gpio;
    DHT* dht = nullptr;
    Adafruit_BME280* bme = nullptr;
    bool ok = false;          // device found / set up
    bool haveReading = false;
    uint32_t lastRead = 0;
    float temperature = NAN;
    float humidity = NAN;
  };

  void connectBroker();
  SensorSlot* sensorSlot(const Entity& e);
  void refresh(SensorSlot& s);
  static void onMessage(char* topic, uint8_t* payload, unsigned int len);

  Board* board_ = nullptr;
  Preferences prefs_;
  WiFiClient tcp_;
  PubSubClient mqtt_{tcp_};
  Net net_ = Net::Idle;
  uint8_t rx_[512];

  // PubSubClient keeps pointers to the server name and Last Will, so they live here.
  char ssid_[33] = "";
  char wifiPass_[65] = "";
  char host_[65] = "";
  uint16_t port_ = 1883;
  char clientId_[24] = "";
  char user_[33] = "";
  char password_[65] = "";
  char willTopic_[80] = "";
  char willPayload_[8] = "";
  uint8_t willQos_ = 1;
  bool willRetain_ = true;

  int pwmPins_[kMaxPwm] = {-1, -1, -1, -1, -1, -1};
  SensorSlot sensors_[kMaxSensors];
  uint32_t lastPhysicalRead_ = 0;
};

}  // namespace hearth
