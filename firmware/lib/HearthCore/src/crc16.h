#pragma once
#include <cstddef>
#include <cstdint>

namespace hearth {

// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
// The check value of "123456789" is 0x29B1. Pass a previous result as `crc` to continue a running CRC.
uint16_t crc16(const uint8_t* data, size_t len, uint16_t crc = 0xFFFF);

inline uint16_t crc16(const char* data, size_t len, uint16_t crc = 0xFFFF) {
  return crc16(reinterpret_cast<const uint8_t*>(data), len, crc);
}

}  // namespace hearth
