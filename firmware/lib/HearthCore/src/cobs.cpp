#include "cobs.h"

namespace hearth {

CobsWriter::CobsWriter(uint8_t* out, size_t cap) : out_(out), cap_(cap) {
  if (cap_ < 1) overflow_ = true;
}

void CobsWriter::put(uint8_t b) {
  if (overflow_) return;
  if (b == 0) {
    out_[codeAt_] = code_;
    if (len_ >= cap_) {
      overflow_ = true;
      return;
    }
    codeAt_ = len_++;
    code_ = 1;
    return;
  }
  if (len_ >= cap_) {
    overflow_ = true;
    return;
  }
  out_[len_++] = b;
  if (++code_ == 0xFF) {
    out_[codeAt_] = code_;
    if (len_ >= cap_) {
      overflow_ = true;
      return;
    }
    codeAt_ = len_++;
    code_ = 1;
  }
}

void CobsWriter::put(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) put(data[i]);
}

size_t CobsWriter::finish() {
  if (overflow_) return 0;
  out_[codeAt_] = code_;
  return len_;
}

size_t cobsEncode(const uint8_t* in, size_t len, uint8_t* out, size_t cap) {
  if (cap < cobsMaxEncodedSize(len)) return 0;
  CobsWriter w(out, cap);
  w.put(in, len);
  return w.finish();
}

bool cobsDecode(const uint8_t* in, size_t len, uint8_t* out, size_t cap, size_t* outLen) {
  size_t r = 0;
  size_t w = 0;
  while (r < len) {
    const uint8_t code = in[r++];
    if (code == 0) return false;
    const size_t n = static_cast<size_t>(code) - 1;
    if (n > len - r || n > cap - w) return false;
    for (size_t k = 0; k < n; ++k) {
      if (in[r] == 0) return false;
      out[w++] = in[r++];
    }
    // A block shorter than 254 stands for its data plus one 0x00, except the last one (the implicit end).
    if (code != 0xFF && r < len) {
      if (w >= cap) return false;
      out[w++] = 0;
    }
  }
  *outLen = w;
  return true;
}

}  // namespace hearth
