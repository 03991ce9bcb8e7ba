#include "frame.h"

#include "crc16.h"

namespace hearth {

void FrameDecoder::reset() {
  len_ = 0;
  overflow_ = false;
}

void FrameDecoder::discard(uint32_t& counter) {
  ++counter;
  reset();
}

void FrameDecoder::expire(uint32_t nowMs) {
  // Measured from the last byte, not the first: a slow but steady sender is fine, a half frame left behind
  // by a reset or an unplug is not.
  if (pending() && nowMs - lastByteMs_ > kPartialFrameTimeoutMs) discard(stats_.timeout);
}

void FrameDecoder::feed(const uint8_t* data, size_t len, uint32_t nowMs, FrameSink& sink) {
  if (len == 0) {
    expire(nowMs);
    return;
  }
  expire(nowMs);
  lastByteMs_ = nowMs;
  for (size_t i = 0; i < len; ++i) {
    const uint8_t b = data[i];
    if (b == 0) {
      endFrame(sink);
      continue;
    }
    if (overflow_) continue;  // skip to the next delimiter
    if (len_ == sizeof(buf_)) {
      overflow_ = true;
      continue;
    }
    buf_[len_++] = b;
  }
}

void FrameDecoder::endFrame(FrameSink& sink) {
  if (overflow_) {
    discard(stats_.oversize);
    return;
  }
  if (len_ == 0) return;  // delimiter after delimiter
  size_t n = 0;
  if (!cobsDecode(buf_, len_, decoded_, kMaxFramePayload, &n)) {
    discard(stats_.cobs);
    return;
  }
  if (n < 3) {
    discard(stats_.tooShort);
    return;
  }
  const size_t jsonLen = n - 2;
  const uint16_t want = static_cast<uint16_t>((decoded_[jsonLen] << 8) | decoded_[jsonLen + 1]);
  if (crc16(decoded_, jsonLen) != want) {
    discard(stats_.crc);
    return;
  }
  reset();
  decoded_[jsonLen] = 0;
  sink.onFrame(reinterpret_cast<const char*>(decoded_), jsonLen);
}

size_t FrameEncoder::encode(const char* json, size_t len, uint8_t* out, size_t cap) {
  if (len == 0 || len > kMaxMessage || cap < cobsMaxEncodedSize(len + 2) + 2) return 0;
  const uint16_t crc = crc16(json, len);
  const uint8_t tail[2] = {static_cast<uint8_t>(crc >> 8), static_cast<uint8_t>(crc & 0xFF)};
  out[0] = 0;  // ends whatever junk the receiver has buffered, so it cannot corrupt this frame
  CobsWriter w(out + 1, cap - 2);
  w.put(reinterpret_cast<const uint8_t*>(json), len);
  w.put(tail, 2);
  const size_t n = w.finish();
  if (n == 0) return 0;
  out[n + 1] = 0;
  return n + 2;
}

}  // namespace hearth
