#pragma once
#include "Arduino.h"

typedef enum { WL_IDLE_STATUS = 0, WL_CONNECTED = 3, WL_DISCONNECTED = 6 } wl_status_t;
typedef enum { WIFI_OFF = 0, WIFI_STA = 1 } wifi_mode_t;

class Client {
 public:
  virtual ~Client() = default;
};

class WiFiClient : public Client {
 public:
  int connect(const char* host, uint16_t port);
  int connect(const char* host, uint16_t port, int32_t timeout_ms);
  uint8_t connected();
  void stop();
  int setNoDelay(bool nodelay);
};

class WiFiClass {
 public:
  bool mode(wifi_mode_t m);
  void persistent(bool p);
  bool setAutoReconnect(bool a);
  wl_status_t begin(const char* ssid, const char* pass);
  bool disconnect(bool wifioff = false, bool eraseap = false);
  wl_status_t status();
  int8_t RSSI();
  uint8_t* macAddress(uint8_t* mac);
};
extern WiFiClass WiFi;
