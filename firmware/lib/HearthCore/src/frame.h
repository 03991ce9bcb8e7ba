#pragma once
#include <cstddef>
#include <cstdint>

#include "cobs.h"

namespace hearth {

constexpr size_t kMaxMessage = 1024;                                     // JSON bytes per message
constexpr size_t kMaxFramePayload = kMaxMessage + 2;                     // JSON ++ CRC-16
constexpr size_t kMaxEncodedFrame = cobsMaxEncodedSize(kMaxFramePayload);  // between the delimiters
constexpr size_t kMaxWireFrame = kMaxEncodedFrame + 2;                   // with the leading and trailing 0x00
constexpr uint32_t kPartialFrameTimeoutMs = 250;

// Receives each good frame's JSON (CRC removed, NUL-terminated for convenience).
class FrameSink {
 public:
  virtual void onFrame(const char* json, size_t len) = 0;

 protected:
  ~FrameSink() = default;
};

// Why frames were dropped; `total()` is what the board reports as `tele.bad` (plus invalid messages).
struct FrameStats {
  uint32_t cobs = 0;
  uint32_t crc = 0;
  uint32_t tooShort = 0;
  uint32_t oversize = 0;
  uint32_t timeout = 0;
  uint32_t total() const { return cobs + crc + tooShort + oversize + timeout; }
};

// Byte stream -> frames. Resynchronises at every 0x00; an empty frame (two delimiters in a row, which every
// back-to-back pair of frames produces) is not an error. Fixed buffers, no allocation.
class FrameDecoder {
 public:
  // Feed any chunk of received bytes. `nowMs` is the arrival time of the chunk.
  void feed(const uint8_t* data, size_t len, uint32_t nowMs, FrameSink& sink);
  // Drops a partial frame whose last byte arrived more than kPartialFrameTimeoutMs ago.
  void expire(uint32_t nowMs);
  void reset();
  uint32_t bad() const { return stats_.total(); }
  const FrameStats& stats() const { return stats_; }

 private:
  void endFrame(FrameSink& sink);
  bool pending() const { return len_ > 0 || overflow_; }
  void discard(uint32_t& counter);

  uint8_t buf_[kMaxEncodedFrame];
  uint8_t decoded_[kMaxFramePayload + 1];
  size_t len_ = 0;
  bool overflow_ = false;
  uint32_t lastByteMs_ = 0;
  FrameStats stats_;
};

// One message -> wire bytes: 0x00, COBS(json ++ crc16_be(json)), 0x00.
class FrameEncoder {
 public:
  // Returns the number of bytes written, or 0 if `len` is 0 or over kMaxMessage or `cap` < kMaxWireFrame
  // would be needed for this message.
  static size_t encode(const char* json, size_t len, uint8_t* out, size_t cap);
};

}  // namespace hearth
