#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "json.h"

using namespace hearth;

namespace {

bool parses(const std::string& s) {
  static JsonReader r;  // large: keep it off the test's stack
  return r.parse(s.data(), s.size());
}

std::string write(void (*fn)(JsonWriter&)) {
  char buf[512];
  JsonWriter w(buf, sizeof(buf));
  fn(w);
  EXPECT_TRUE(w.ok());
  return std::string(buf, w.size());
}

}  // namespace

TEST(JsonReader, FlatObject) {
  JsonReader r;
  const std::string s = R"( { "v" : 1, "t":"cmd", "val": -12.5e1, "ok": true, "no": false, "x": null } )";
  ASSERT_TRUE(r.parse(s.data(), s.size())) << r.error();
  double v = 0;
  ASSERT_TRUE(r.getNumber("v", &v));
  EXPECT_EQ(v, 1);
  ASSERT_TRUE(r.getNumber("val", &v));
  EXPECT_EQ(v, -125);
  const char* t = nullptr;
  ASSERT_TRUE(r.getString("t", &t));
  EXPECT_STREQ(t, "cmd");
  bool b = false;
  ASSERT_TRUE(r.getBool("ok", &b));
  EXPECT_TRUE(b);
  EXPECT_EQ(r.find("x")->type, JsonType::Null);
  EXPECT_FALSE(r.getString("v", &t)) << "type mismatch is 'missing'";
  EXPECT_EQ(r.find("nope"), nullptr);
}

TEST(JsonReader, EmptyObject) {
  JsonReader r;
  ASSERT_TRUE(r.parse("{}", 2));
  EXPECT_EQ(r.size(), 0u);
}

TEST(JsonReader, Escapes) {
  JsonReader r;
  const std::string s = R"({"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00"})";
  ASSERT_TRUE(r.parse(s.data(), s.size())) << r.error();
  const char* v = nullptr;
  size_t n = 0;
  ASSERT_TRUE(r.getString("s", &v, &n));
  EXPECT_EQ(std::string(v, n), "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

TEST(JsonReader, EscapedKey) {
  JsonReader r;
  const std::string s = R"({"\u0074":"x"})";
  ASSERT_TRUE(r.parse(s.data(), s.size()));
  EXPECT_NE(r.find("t"), nullptr);
}

TEST(JsonReader, NestedValuesAreSkipped) {
  JsonReader r;
  const std::string s = R"({"a":{"b":[1,2,{"c":"}]"}]},"d":[[]],"e":2})";
  ASSERT_TRUE(r.parse(s.data(), s.size())) << r.error();
  EXPECT_EQ(r.find("a")->type, JsonType::Nested);
  EXPECT_EQ(r.find("d")->type, JsonType::Nested);
  double e = 0;
  EXPECT_TRUE(r.getNumber("e", &e));
  EXPECT_EQ(e, 2);
}

TEST(JsonReader, MaliciousInputsFailCleanly) {
  const char* bad[] = {
      "",
      "   ",
      "[]",
      "\"str\"",
      "{",
      "{\"a\"",
      "{\"a\":",
      "{\"a\":1",
      "{\"a\":1,}",
      "{,}",
      "{\"a\" 1}",
      "{\"a\":\"unterminated}",
      "{\"a\":\"bad escape \\x\"}",
      "{\"a\":\"\\u12\"}",
      "{\"a\":\"\\uZZZZ\"}",
      "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\ud800\\u0041\"}",
      "{\"a\":\"\\udc00\"}",
      "{\"a\":\"\\u0000\"}",
      "{\"a\":\"tab\there\"}",
      "{\"a\":01}",
      "{\"a\":1.}",
      "{\"a\":.5}",
      "{\"a\":1e}",
      "{\"a\":-}",
      "{\"a\":+1}",
      "{\"a\":1e999}",
      "{\"a\":-1e400}",
      "{\"a\":NaN}",
      "{\"a\":Infinity}",
      "{\"a\":tru}",
      "{\"a\":nul}",
      "{\"a\":1} x",
      "{\"a\":1}{}",
      "{\"a\":1,\"a\":2}",
      "{\"a\":[1,2}",
      "{\"a\":[}",
      "{\"a\":{\"b\":\"unterminated}}",
      "{\"a\":[1,2,3",
      "{1:2}",
  };
  for (const char* s : bad) EXPECT_FALSE(parses(s)) << s;
}

TEST(JsonReader, HugeNumberTokenIsRejected) {
  EXPECT_FALSE(parses("{\"a\":" + std::string(500, '9') + "}"));
  EXPECT_TRUE(parses("{\"a\":123456789012345678901234567890}")) << "big but finite and short enough";
}

TEST(JsonReader, DeepNesting) {
  std::string deep = "{\"a\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  EXPECT_FALSE(parses(deep));
  std::string ok = "{\"a\":" + std::string(JsonReader::kMaxDepth, '[') + std::string(JsonReader::kMaxDepth, ']') + "}";
  EXPECT_TRUE(parses(ok));
}

TEST(JsonReader, InputLimit) {
  std::string s = "{\"a\":\"" + std::string(JsonReader::kMaxInput, 'x') + "\"}";
  EXPECT_FALSE(parses(s));
}

TEST(JsonReader, TooManyKeys) {
  std::string s = "{";
  for (size_t i = 0; i <= JsonReader::kMaxFields; ++i) s += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  s += "}";
  EXPECT_FALSE(parses(s));
}

TEST(JsonReader, NeverReadsPastLength) {
  // The buffer holds a valid object, but `len` cuts it: every prefix must fail without touching the rest
  // (AddressSanitizer checks the bounds because each prefix is copied into its own exact-size allocation).
  const std::string s = R"({"v":1,"t":"cmd","id":"abc","e":"x","a":"set","val":1.5,"s":"\u00e9"})";
  for (size_t n = 0; n < s.size(); ++n) {
    std::unique_ptr<char[]> copy(new char[n == 0 ? 1 : n]);
    memcpy(copy.get(), s.data(), n);
    JsonReader r;
    EXPECT_FALSE(r.parse(copy.get(), n)) << n;
  }
}

TEST(JsonReader, RandomBytesNeverCrash) {
  std::mt19937 rng(3);
  const char alphabet[] = "{}[]\",:\\u0123456789abcdefnrtl-+.eE \x01\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string s = "{";
    const size_t n = rng() % 64;
    for (size_t k = 0; k < n; ++k) s += alphabet[rng() % (sizeof(alphabet) - 1)];
    parses(s);  // must not crash or trip the sanitizers
  }
}

TEST(JsonWriter, ObjectsArraysAndNumbers) {
  const std::string s = write([](JsonWriter& w) {
    w.beginObject().fieldInt("v", 1).field("t", "hello").key("list").beginArray();
    w.beginObject().fieldNum("a", 21.5).endObject();
    w.beginObject().fieldNum("b", -40).endObject();
    w.endArray().fieldNum("nan", NAN).key("ok").boolean(true).key("n").null().endObject();
  });
  EXPECT_EQ(s, R"({"v":1,"t":"hello","list":[{"a":21.5},{"b":-40}],"nan":null,"ok":true,"n":null})");
}

TEST(JsonWriter, EscapesStrings) {
  const std::string s = write([](JsonWriter& w) { w.beginObject().field("s", "q\"b\\n\n\x01\x7f").endObject(); });
  EXPECT_EQ(s, "{\"s\":\"q\\\"b\\\\n\\n\\u0001\x7f\"}");
}

TEST(JsonWriter, InvalidUtf8IsReplaced) {
  const std::string s = write([](JsonWriter& w) {
    w.beginObject().field("s", "ok \xc3\xa9 bad \xff \xc3 over \xc0\xaf sur \xed\xa0\x80 end").endObject();
  });
  EXPECT_EQ(s, "{\"s\":\"ok \xc3\xa9 bad \\ufffd \\ufffd over \\ufffd\\ufffd sur \\ufffd\\ufffd\\ufffd end\"}");
}

TEST(JsonWriter, RoundTripThroughReader) {
  char buf[256];
  JsonWriter w(buf, sizeof(buf));
  w.beginObject().field("s", "tab\t\"quote\" \xe2\x82\xac").fieldNum("x", 0.1).endObject();
  ASSERT_TRUE(w.ok());
  JsonReader r;
  ASSERT_TRUE(r.parse(buf, w.size()));
  const char* v = nullptr;
  ASSERT_TRUE(r.getString("s", &v));
  EXPECT_STREQ(v, "tab\t\"quote\" \xe2\x82\xac");
  double x = 0;
  ASSERT_TRUE(r.getNumber("x", &x));
  EXPECT_DOUBLE_EQ(x, 0.1);
}

TEST(JsonWriter, OverflowIsReportedAndBufferStaysTerminated) {
  char buf[10];
  JsonWriter w(buf, sizeof(buf));
  w.beginObject().field("key", "a long value").endObject();
  EXPECT_FALSE(w.ok());
  EXPECT_LT(strlen(buf), sizeof(buf));
}

TEST(JsonWriter, CountingMode) {
  JsonWriter w(nullptr, 0);
  w.beginObject().field("a", "b").endObject();
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.size(), 9u);
}
