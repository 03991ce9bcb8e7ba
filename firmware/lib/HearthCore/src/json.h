#pragma once
#include <cstddef>
#include <cstdint>

namespace hearth {

enum class JsonType : uint8_t { Null, Bool, Number, String, Nested };

struct JsonField {
  const char* key;  // unescaped, NUL-terminated
  size_t keyLen;
  JsonType type;
  bool boolean;
  double number;
  const char* str;  // unescaped, NUL-terminated (String only)
  size_t strLen;
};

// Parser for the flat JSON objects of the protocol. Top level must be an object; string, number, bool and
// null values are decoded; nested objects/arrays are skipped (type Nested) so a newer sender's extra keys do
// not break an older board. Fixed storage, no allocation, no recursion, never reads past `len`.
// Choices: duplicate keys, "\u0000", lone surrogates and non-finite numbers make the whole input invalid.
class JsonReader {
 public:
  static constexpr size_t kMaxInput = 1024;
  static constexpr size_t kMaxFields = 24;
  static constexpr int kMaxDepth = 32;  // nesting allowed inside a skipped value

  bool parse(const char* text, size_t len);
  const char* error() const { return err_; }

  size_t size() const { return count_; }
  const JsonField& field(size_t i) const { return fields_[i]; }
  const JsonField* find(const char* key) const;

  // False when the key is missing or holds another type.
  bool getString(const char* key, const char** s, size_t* n = nullptr) const;
  bool getNumber(const char* key, double* v) const;
  bool getBool(const char* key, bool* v) const;

 private:
  struct Cursor {
    const char* p;
    const char* end;
  };
  bool fail(const char* why);
  bool parseString(Cursor& c, const char** out, size_t* outLen);
  bool parseNumber(Cursor& c, double* out);
  bool parseLiteral(Cursor& c, const char* word);
  bool skipNested(Cursor& c);
  bool putStore(char ch);

  char store_[kMaxInput + 2];
  size_t storeLen_ = 0;
  JsonField fields_[kMaxFields];
  size_t count_ = 0;
  const char* err_ = "";
};

// Compact JSON writer into a caller's buffer. Strings are escaped and invalid UTF-8 is replaced by U+FFFD,
// so the output is always valid JSON. With a null buffer it only counts (to size a message before sending).
class JsonWriter {
 public:
  JsonWriter(char* buf, size_t cap);

  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  JsonWriter& key(const char* k);
  JsonWriter& str(const char* s);
  JsonWriter& str(const char* s, size_t n);
  JsonWriter& num(double v);  // integral values print without a fraction; NaN/inf print as null
  JsonWriter& integer(long long v);
  JsonWriter& boolean(bool b);
  JsonWriter& null();

  // Short forms for "key": value.
  JsonWriter& field(const char* k, const char* v) { return key(k).str(v); }
  JsonWriter& fieldNum(const char* k, double v) { return key(k).num(v); }
  JsonWriter& fieldInt(const char* k, long long v) { return key(k).integer(v); }

  bool ok() const { return ok_; }
  size_t size() const { return len_; }  // bytes written (or needed), without the NUL

 private:
  static constexpr int kMaxDepth = 8;
  void separator();
  void open(char c);
  void close(char c);
  void raw(const char* s, size_t n);
  void ch(char c);
  void escaped(const char* s, size_t n);

  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool ok_ = true;
  int depth_ = 0;
  bool first_[kMaxDepth + 1];
  bool afterKey_ = false;
};

}  // namespace hearth
