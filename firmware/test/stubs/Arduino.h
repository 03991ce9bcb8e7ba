// Minimal stand-ins for the arduino-esp32 2.x API that firmware/src uses: enough to compile (never link)
// the Arduino sources on the host, so a typo or a core-API misuse shows up in CI without a toolchain.
// Signatures follow arduino-esp32 2.0.x.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#define HIGH 0x1
#define LOW 0x0
#define INPUT 0x01
#define OUTPUT 0x03
#define INPUT_PULLUP 0x05

unsigned long millis();
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t val);
int digitalRead(uint8_t pin);
uint32_t esp_random();
double ledcSetup(uint8_t channel, double freq, uint8_t resolution_bits);
void ledcAttachPin(uint8_t pin, uint8_t channel);
void ledcWrite(uint8_t channel, uint32_t duty);

class HardwareSerial {
 public:
  void begin(unsigned long baud);
  size_t setRxBufferSize(size_t n);
  size_t setTxBufferSize(size_t n);
  int available();
  int availableForWrite();
  size_t read(uint8_t* buf, size_t n);
  size_t write(const uint8_t* buf, size_t n);
  size_t print(const char* s);
  size_t println(const char* s);
};
extern HardwareSerial Serial;

class EspClass {
 public:
  uint32_t getFreeHeap();
};
extern EspClass ESP;
