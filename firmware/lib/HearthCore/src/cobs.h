#pragma once
#include <cstddef>
#include <cstdint>

namespace hearth {

// Consistent Overhead Byte Stuffing: the encoded bytes contain no 0x00, so 0x00 can delimit frames.
// Worst case one extra byte per 254 input bytes, plus one.
constexpr size_t cobsMaxEncodedSize(size_t n) { return n + n / 254 + 1; }

// Streaming encoder, so a frame can be built from several pieces (JSON, then its CRC) without a staging copy.
// Blocks of 254 non-zero bytes are closed at once (code 0xFF) even at the very end: the same bytes as
// edge/protocol.py's encoder, so both sides can be compared byte for byte.
class CobsWriter {
 public:
  CobsWriter(uint8_t* out, size_t cap);
  void put(uint8_t b);
  void put(const uint8_t* data, size_t len);
  // Closes the last block; returns the encoded length, or 0 if `cap` was too small at any point.
  size_t finish();

 private:
  uint8_t* out_;
  size_t cap_;
  size_t codeAt_ = 0;  // where the current block's code byte goes
  size_t len_ = 1;
  uint8_t code_ = 1;
  bool overflow_ = false;
};

// Returns the encoded length, or 0 if `cap` < cobsMaxEncodedSize(len).
size_t cobsEncode(const uint8_t* in, size_t len, uint8_t* out, size_t cap);

// Returns false for a malformed input (a 0x00 inside, a block running past the end) or when the output
// does not fit in `cap`. Never reads or writes out of bounds.
bool cobsDecode(const uint8_t* in, size_t len, uint8_t* out, size_t cap, size_t* outLen);

}  // namespace hearth
