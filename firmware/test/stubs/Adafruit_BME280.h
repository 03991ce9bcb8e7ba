#pragma once
#include "Wire.h"

class Adafruit_BME280 {
 public:
  Adafruit_BME280();
  bool begin(uint8_t addr, TwoWire* theWire);
  float readTemperature();
  float readHumidity();
};
