// The JSON writer (json.h): compact output, escaped strings, invalid UTF-8 replaced.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "json.h"

namespace hearth {

JsonWriter::JsonWriter(char* buf, size_t cap) : buf_(buf), cap_(cap) {
  first_[0] = true;
  if (buf_ != nullptr) {
    if (cap_ == 0) {
      ok_ = false;
    } else {
      buf_[0] = '\0';
    }
  }
}

void JsonWriter::ch(char c) {
  if (!ok_) return;
  if (buf_ != nullptr) {
    if (len_ + 1 >= cap_) {
      ok_ = false;
      return;
    }
    buf_[len_] = c;
    buf_[len_ + 1] = '\0';
  }
  ++len_;
}

void JsonWriter::raw(const char* s, size_t n) {
  for (size_t i = 0; i < n; ++i) ch(s[i]);
}

void JsonWriter::separator() {
  if (afterKey_) {
    afterKey_ = false;
    return;
  }
  if (depth_ > 0) {
    if (!first_[depth_]) ch(',');
    first_[depth_] = false;
  }
}

void JsonWriter::open(char c) {
  separator();
  ch(c);
  if (depth_ >= kMaxDepth) {
    ok_ = false;
    return;
  }
  first_[++depth_] = true;
}

void JsonWriter::close(char c) {
  if (depth_ == 0 || afterKey_) {
    ok_ = false;
    return;
  }
  ch(c);
  --depth_;
}

JsonWriter& JsonWriter::beginObject() { open('{'); return *this; }
JsonWriter& JsonWriter::endObject() { close('}'); return *this; }
JsonWriter& JsonWriter::beginArray() { open('['); return *this; }
JsonWriter& JsonWriter::endArray() { close(']'); return *this; }

JsonWriter& JsonWriter::key(const char* k) {
  separator();
  ch('"');
  escaped(k, strlen(k));
  ch('"');
  ch(':');
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::str(const char* s) { return str(s, s == nullptr ? 0 : strlen(s)); }

JsonWriter& JsonWriter::str(const char* s, size_t n) {
  separator();
  ch('"');
  if (s != nullptr) escaped(s, n);
  ch('"');
  return *this;
}

JsonWriter& JsonWriter::num(double v) {
  if (!std::isfinite(v)) return null();
  if (v == std::floor(v) && std::fabs(v) < 1e15) return integer(static_cast<long long>(v));
  separator();
  char tmp[32];
  const int n = snprintf(tmp, sizeof(tmp), "%.7g", v);
  raw(tmp, n > 0 ? static_cast<size_t>(n) : 0);
  return *this;
}

JsonWriter& JsonWriter::integer(long long v) {
  separator();
  char tmp[24];
  const int n = snprintf(tmp, sizeof(tmp), "%lld", v);
  raw(tmp, n > 0 ? static_cast<size_t>(n) : 0);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool b) {
  separator();
  if (b) {
    raw("true", 4);
  } else {
    raw("false", 5);
  }
  return *this;
}

JsonWriter& JsonWriter::null() {
  separator();
  raw("null", 4);
  return *this;
}

void JsonWriter::escaped(const char* s, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  const auto* u = reinterpret_cast<const unsigned char*>(s);
  size_t i = 0;
  while (i < n) {
    const unsigned char b = u[i];
    if (b < 0x80) {
      if (b == '"' || b == '\\') {
        ch('\\');
        ch(static_cast<char>(b));
      } else if (b < 0x20) {
        ch('\\');
        switch (b) {
          case '\n': ch('n'); break;
          case '\r': ch('r'); break;
          case '\t': ch('t'); break;
          case '\b': ch('b'); break;
          case '\f': ch('f'); break;
          default:
            raw("u00", 3);
            ch(kHex[b >> 4]);
            ch(kHex[b & 0xF]);
        }
      } else {
        ch(static_cast<char>(b));
      }
      ++i;
      continue;
    }
    // Multi-byte UTF-8: copy well-formed sequences, replace anything else (stray bytes, overlongs,
    // surrogates, truncated tails) with U+FFFD so the receiver's strict UTF-8 decoder never fails.
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b == 0xE0) {
      need = 2;
      lo = 0xA0;
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
      need = 2;
    } else if (b == 0xED) {
      need = 2;
      hi = 0x9F;
    } else if (b == 0xF0) {
      need = 3;
      lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
      need = 3;
    } else if (b == 0xF4) {
      need = 3;
      hi = 0x8F;
    }
    bool good = need > 0 && n - i > need && u[i + 1] >= lo && u[i + 1] <= hi;
    for (size_t k = 2; good && k <= need; ++k) good = u[i + k] >= 0x80 && u[i + k] <= 0xBF;
    if (good) {
      raw(s + i, need + 1);
      i += need + 1;
    } else {
      raw("\\ufffd", 6);
      ++i;
    }
  }
}

}  // namespace hearth
