#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hearth {

namespace {

bool isWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

int hexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ reader

bool JsonReader::fail(const char* why) {
  err_ = why;
  count_ = 0;
  return false;
}

bool JsonReader::putStore(char ch) {
  // Unescaped text is never longer than its source, so this cannot trigger for input <= kMaxInput;
  // the check stays because the parser must be safe even if that reasoning is ever broken.
  if (storeLen_ >= sizeof(store_)) return fail("string storage full");
  store_[storeLen_++] = ch;
  return true;
}

bool JsonReader::parse(const char* text, size_t len) {
  count_ = 0;
  storeLen_ = 0;
  err_ = "";
  if (text == nullptr) return fail("no input");
  if (len > kMaxInput) return fail("input over 1024 bytes");
  Cursor c{text, text + len};
  auto skipWs = [&c] {
    while (c.p < c.end && isWs(*c.p)) ++c.p;
  };
  skipWs();
  if (c.p >= c.end || *c.p != '{') return fail("not a JSON object");
  ++c.p;
  skipWs();
  if (c.p < c.end && *c.p == '}') {
    ++c.p;
  } else {
    for (;;) {
      skipWs();
      if (c.p >= c.end || *c.p != '"') return fail("expected a key");
      if (count_ == kMaxFields) return fail("too many keys");
      JsonField& f = fields_[count_];
      f = JsonField{};
      if (!parseString(c, &f.key, &f.keyLen)) return false;
      if (find(f.key) != nullptr) return fail("duplicate key");
      skipWs();
      if (c.p >= c.end || *c.p != ':') return fail("expected ':'");
      ++c.p;
      skipWs();
      if (c.p >= c.end) return fail("missing value");
      const char ch = *c.p;
      bool good;
      if (ch == '"') {
        f.type = JsonType::String;
        good = parseString(c, &f.str, &f.strLen);
      } else if (ch == '{' || ch == '[') {
        f.type = JsonType::Nested;
        good = skipNested(c);
      } else if (ch == 't' || ch == 'f') {
        f.type = JsonType::Bool;
        f.boolean = ch == 't';
        good = parseLiteral(c, f.boolean ? "true" : "false");
      } else if (ch == 'n') {
        f.type = JsonType::Null;
        good = parseLiteral(c, "null");
      } else if (ch == '-' || isDigit(ch)) {
        f.type = JsonType::Number;
        good = parseNumber(c, &f.number);
      } else {
        return fail("unexpected character");
      }
      if (!good) return false;
      ++count_;
      skipWs();
      if (c.p >= c.end) return fail("unterminated object");
      if (*c.p == ',') {
        ++c.p;
        continue;
      }
      if (*c.p == '}') {
        ++c.p;
        break;
      }
      return fail("expected ',' or '}'");
    }
  }
  skipWs();
  if (c.p != c.end) return fail("trailing characters");
  return true;
}

bool JsonReader::parseString(Cursor& c, const char** out, size_t* outLen) {
  ++c.p;  // opening quote
  const size_t start = storeLen_;
  for (;;) {
    if (c.p >= c.end) return fail("unterminated string");
    const unsigned char ch = static_cast<unsigned char>(*c.p++);
    if (ch == '"') break;
    if (ch < 0x20) return fail("control character in string");
    if (ch != '\\') {
      if (!putStore(static_cast<char>(ch))) return false;
      continue;
    }
    if (c.p >= c.end) return fail("unterminated escape");
    const char e = *c.p++;
    char simple = 0;
    switch (e) {
      case '"': simple = '"'; break;
      case '\\': simple = '\\'; break;
      case '/': simple = '/'; break;
      case 'b': simple = '\b'; break;
      case 'f': simple = '\f'; break;
      case 'n': simple = '\n'; break;
      case 'r': simple = '\r'; break;
      case 't': simple = '\t'; break;
      case 'u': break;
      default: return fail("invalid escape");
    }
    if (simple != 0) {
      if (!putStore(simple)) return false;
      continue;
    }
    auto hex4 = [&c](uint32_t* v) {
      if (c.end - c.p < 4) return false;
      uint32_t r = 0;
      for (int i = 0; i < 4; ++i) {
        const int h = hexVal(c.p[i]);
        if (h < 0) return false;
        r = (r << 4) | static_cast<uint32_t>(h);
      }
      c.p += 4;
      *v = r;
      return true;
    };
    uint32_t cp = 0;
    if (!hex4(&cp)) return fail("invalid \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t lo = 0;
      if (c.end - c.p < 2 || c.p[0] != '\\' || c.p[1] != 'u') return fail("lone surrogate");
      c.p += 2;
      if (!hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return fail("lone surrogate");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return fail("lone surrogate");
    }
    if (cp == 0) return fail("\\u0000 in string");  // values end up in C strings (NVS, topics)
    bool good;
    if (cp < 0x80) {
      good = putStore(static_cast<char>(cp));
    } else if (cp < 0x800) {
      good = putStore(static_cast<char>(0xC0 | (cp >> 6))) && putStore(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      good = putStore(static_cast<char>(0xE0 | (cp >> 12))) &&
             putStore(static_cast<char>(0x80 | ((cp >> 6) & 0x3F))) &&
             putStore(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      good = putStore(static_cast<char>(0xF0 | (cp >> 18))) &&
             putStore(static_cast<char>(0x80 | ((cp >> 12) & 0x3F))) &&
             putStore(static_cast<char>(0x80 | ((cp >> 6) & 0x3F))) &&
             putStore(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    if (!good) return false;
  }
  if (!putStore('\0')) return false;
  *out = store_ + start;
  *outLen = storeLen_ - start - 1;
  return true;
}

bool JsonReader::parseNumber(Cursor& c, double* out) {
  const char* s = c.p;
  if (*c.p == '-') ++c.p;
  if (c.p >= c.end) return fail("bad number");
  if (*c.p == '0') {
    ++c.p;
  } else if (isDigit(*c.p)) {
    while (c.p < c.end && isDigit(*c.p)) ++c.p;
  } else {
    return fail("bad number");
  }
  if (c.p < c.end && *c.p == '.') {
    ++c.p;
    if (c.p >= c.end || !isDigit(*c.p)) return fail("bad number");
    while (c.p < c.end && isDigit(*c.p)) ++c.p;
  }
  if (c.p < c.end && (*c.p == 'e' || *c.p == 'E')) {
    ++c.p;
    if (c.p < c.end && (*c.p == '+' || *c.p == '-')) ++c.p;
    if (c.p >= c.end || !isDigit(*c.p)) return fail("bad number");
    while (c.p < c.end && isDigit(*c.p)) ++c.p;
  }
  const size_t n = static_cast<size_t>(c.p - s);
  char tmp[64];
  if (n >= sizeof(tmp)) return fail("number too long");
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  const double v = strtod(tmp, nullptr);
  if (!std::isfinite(v)) return fail("number out of range");
  *out = v;
  return true;
}

bool JsonReader::parseLiteral(Cursor& c, const char* word) {
  const size_t n = strlen(word);
  if (static_cast<size_t>(c.end - c.p) < n || memcmp(c.p, word, n) != 0) return fail("bad literal");
  c.p += n;
  return true;
}

bool JsonReader::skipNested(Cursor& c) {
  // Brackets are matched with a bit stack (1 = object), so "[}" is rejected; the contents are not
  // validated further because the value is thrown away.
  uint32_t kinds = 0;
  int depth = 0;
  while (c.p < c.end) {
    const char ch = *c.p++;
    if (ch == '"') {
      for (;;) {
        if (c.p >= c.end) return fail("unterminated string");
        const char s = *c.p++;
        if (s == '\\') {
          if (c.p >= c.end) return fail("unterminated escape");
          ++c.p;
        } else if (s == '"') {
          break;
        } else if (static_cast<unsigned char>(s) < 0x20) {
          return fail("control character in string");
        }
      }
    } else if (ch == '{' || ch == '[') {
      if (depth == kMaxDepth) return fail("nesting too deep");
      kinds = (kinds << 1) | (ch == '{' ? 1u : 0u);
      ++depth;
    } else if (ch == '}' || ch == ']') {
      if ((kinds & 1u) != (ch == '}' ? 1u : 0u)) return fail("mismatched brackets");
      kinds >>= 1;
      if (--depth == 0) return true;
    }
  }
  return fail("unterminated nested value");
}

const JsonField* JsonReader::find(const char* key) const {
  for (size_t i = 0; i < count_; ++i) {
    if (strcmp(fields_[i].key, key) == 0) return &fields_[i];
  }
  return nullptr;
}

bool JsonReader::getString(const char* key, const char** s, size_t* n) const {
  const JsonField* f = find(key);
  if (f == nullptr || f->type != JsonType::String) return false;
  *s = f->str;
  if (n != nullptr) *n = f->strLen;
  return true;
}

bool JsonReader::getNumber(const char* key, double* v) const {
  const JsonField* f = find(key);
  if (f == nullptr || f->type != JsonType::Number) return false;
  *v = f->number;
  return true;
}

bool JsonReader::getBool(const char* key, bool* v) const {
  const JsonField* f = find(key);
  if (f == nullptr || f->type != JsonType::Bool) return false;
  *v = f->boolean;
  return true;
}

}  // namespace hearth
