#pragma once
#include <cstdint>

class TwoWire {
 public:
  bool begin(int sda = -1, int scl = -1, uint32_t frequency = 0);
};
extern TwoWire Wire;
