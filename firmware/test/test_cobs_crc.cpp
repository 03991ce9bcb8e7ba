#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "cobs.h"
#include "crc16.h"

using namespace hearth;

namespace {

std::vector<uint8_t> encode(const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out(cobsMaxEncodedSize(in.size()));
  const size_t n = cobsEncode(in.data(), in.size(), out.data(), out.size());
  EXPECT_GT(n, 0u);
  out.resize(n);
  return out;
}

void roundTrip(const std::vector<uint8_t>& in) {
  const auto enc = encode(in);
  for (uint8_t b : enc) ASSERT_NE(b, 0) << "COBS output must never contain 0x00";
  ASSERT_LE(enc.size(), cobsMaxEncodedSize(in.size()));
  std::vector<uint8_t> dec(in.size() + 8);
  size_t n = 0;
  ASSERT_TRUE(cobsDecode(enc.data(), enc.size(), dec.data(), dec.size(), &n));
  dec.resize(n);
  EXPECT_EQ(dec, in);
}

}  // namespace

TEST(Crc16, CheckValue) {
  EXPECT_EQ(crc16("123456789", 9), 0x29B1);
}

TEST(Crc16, EmptyIsInit) { EXPECT_EQ(crc16("", 0), 0xFFFF); }

TEST(Crc16, RunningEqualsOneShot) {
  const char* s = "hello, hearth";
  const uint16_t part = crc16(s, 5);
  EXPECT_EQ(crc16(s + 5, strlen(s) - 5, part), crc16(s, strlen(s)));
}

TEST(Cobs, KnownVectors) {
  EXPECT_EQ(encode({}), (std::vector<uint8_t>{0x01}));
  EXPECT_EQ(encode({0x00}), (std::vector<uint8_t>{0x01, 0x01}));
  EXPECT_EQ(encode({0x00, 0x00}), (std::vector<uint8_t>{0x01, 0x01, 0x01}));
  EXPECT_EQ(encode({0x11, 0x22, 0x00, 0x33}), (std::vector<uint8_t>{0x03, 0x11, 0x22, 0x02, 0x33}));
  EXPECT_EQ(encode({0x11, 0x00, 0x00, 0x00}), (std::vector<uint8_t>{0x02, 0x11, 0x01, 0x01, 0x01}));
}

TEST(Cobs, ZeroHeavyRoundTrips) {
  for (size_t n : {1u, 2u, 3u, 253u, 254u, 255u, 1026u}) roundTrip(std::vector<uint8_t>(n, 0));
  std::vector<uint8_t> alternating(600);
  for (size_t i = 0; i < alternating.size(); ++i) alternating[i] = i % 2 ? 0 : 0x5A;
  roundTrip(alternating);
}

TEST(Cobs, LongRunsAroundBlockSize) {
  for (size_t n : {253u, 254u, 255u, 256u, 507u, 508u, 509u, 1026u}) {
    std::vector<uint8_t> v(n, 0x42);
    roundTrip(v);
    v.push_back(0);
    roundTrip(v);
    v.insert(v.begin(), 0);
    roundTrip(v);
  }
}

TEST(Cobs, FullBlockEncodingMatchesPythonEncoder) {
  // 254 non-zero bytes: a 0xFF block then an empty final block (edge/protocol.py cobs_encode does the same).
  const auto enc = encode(std::vector<uint8_t>(254, 7));
  ASSERT_EQ(enc.size(), 256u);
  EXPECT_EQ(enc.front(), 0xFF);
  EXPECT_EQ(enc.back(), 0x01);
}

TEST(Cobs, RandomRoundTrips) {
  std::mt19937 rng(42);
  for (int round = 0; round < 500; ++round) {
    std::vector<uint8_t> v(rng() % 1100);
    const int zeroPercent = static_cast<int>(rng() % 100);
    for (auto& b : v) b = static_cast<int>(rng() % 100) < zeroPercent ? 0 : static_cast<uint8_t>(1 + rng() % 255);
    roundTrip(v);
  }
}

TEST(Cobs, RejectsMalformed) {
  uint8_t out[16];
  size_t n = 0;
  const uint8_t zeroCode[] = {0x00, 0x01};
  EXPECT_FALSE(cobsDecode(zeroCode, sizeof(zeroCode), out, sizeof(out), &n));
  const uint8_t pastEnd[] = {0x05, 0x01, 0x02};
  EXPECT_FALSE(cobsDecode(pastEnd, sizeof(pastEnd), out, sizeof(out), &n));
  const uint8_t zeroInside[] = {0x03, 0x01, 0x00};
  EXPECT_FALSE(cobsDecode(zeroInside, sizeof(zeroInside), out, sizeof(out), &n));
}

TEST(Cobs, DecodeRespectsOutputCapacity) {
  const auto enc = encode(std::vector<uint8_t>(40, 9));
  uint8_t out[39];
  size_t n = 0;
  EXPECT_FALSE(cobsDecode(enc.data(), enc.size(), out, sizeof(out), &n));
}

TEST(Cobs, EncodeRefusesSmallBuffer) {
  std::vector<uint8_t> in(300, 1);
  std::vector<uint8_t> out(cobsMaxEncodedSize(in.size()) - 1);
  EXPECT_EQ(cobsEncode(in.data(), in.size(), out.data(), out.size()), 0u);
}

TEST(Cobs, WriterOverflowReportsZero) {
  uint8_t out[4];
  CobsWriter w(out, sizeof(out));
  for (int i = 0; i < 10; ++i) w.put(static_cast<uint8_t>(i + 1));
  EXPECT_EQ(w.finish(), 0u);
}
