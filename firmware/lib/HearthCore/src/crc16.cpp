#include "crc16.h"

namespace hearth {

// A nibble table: 32 bytes of flash instead of 512, still two lookups per byte, which is plenty at 115200 baud.
static const uint16_t kNibble[16] = {0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
                                     0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF};

uint16_t crc16(const uint8_t* data, size_t len, uint16_t crc) {
  for (size_t i = 0; i < len; ++i) {
    const uint8_t b = data[i];
    crc = static_cast<uint16_t>((crc << 4) ^ kNibble[((crc >> 12) ^ (b >> 4)) & 0x0F]);
    crc = static_cast<uint16_t>((crc << 4) ^ kNibble[((crc >> 12) ^ (b & 0x0F)) & 0x0F]);
  }
  return crc;
}

}  // namespace hearth
