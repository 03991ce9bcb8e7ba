#include <gtest/gtest.h>

#include <vector>

#include "backoff.h"
#include "debounce.h"

using namespace hearth;

namespace {

// Drives a debouncer with a raw level script sampled every 5 ms: (level, duration ms) pairs.
std::vector<Gesture> run(Debouncer& d, const std::vector<std::pair<bool, uint32_t>>& script, uint32_t tail = 1000) {
  std::vector<Gesture> out;
  uint32_t t = 0;
  d.reset(false, t);
  auto step = [&](bool level, uint32_t ms) {
    for (uint32_t k = 0; k < ms; k += 5) {
      t += 5;
      const DebounceResult r = d.update(level, t);
      if (r.gesture != Gesture::None) out.push_back(r.gesture);
    }
  };
  for (const auto& s : script) step(s.first, s.second);
  step(false, tail);
  return out;
}

}  // namespace

TEST(Debounce, ShortPressIsPressAfterDoubleWindow) {
  Debouncer d;
  EXPECT_EQ(run(d, {{true, 100}}), std::vector<Gesture>{Gesture::Press});
}

TEST(Debounce, BounceIsIgnored) {
  Debouncer d;
  // 2 ms glitches never last the 30 ms debounce time.
  std::vector<std::pair<bool, uint32_t>> bouncy;
  for (int i = 0; i < 20; ++i) bouncy.push_back({i % 2 == 0, 10});
  EXPECT_TRUE(run(d, bouncy).empty());
  // Bounce on the edges of a real press: still one press.
  EXPECT_EQ(run(d, {{true, 10}, {false, 10}, {true, 10}, {false, 5}, {true, 150}, {false, 10}, {true, 10}}),
            std::vector<Gesture>{Gesture::Press});
}

TEST(Debounce, LongPressFiresWhileHeldAndOnlyOnce) {
  Debouncer d;
  EXPECT_EQ(run(d, {{true, 3000}}), std::vector<Gesture>{Gesture::Long});
}

TEST(Debounce, DoublePress) {
  Debouncer d;
  EXPECT_EQ(run(d, {{true, 100}, {false, 150}, {true, 100}}), std::vector<Gesture>{Gesture::Double});
}

TEST(Debounce, TwoSlowPressesAreTwoPresses) {
  Debouncer d;
  EXPECT_EQ(run(d, {{true, 100}, {false, 600}, {true, 100}}),
            (std::vector<Gesture>{Gesture::Press, Gesture::Press}));
}

TEST(Debounce, PushToTalkPressesImmediately) {
  DebounceConfig c;
  c.immediatePress = true;
  Debouncer d(c);
  uint32_t t = 0;
  d.reset(false, t);
  Gesture first = Gesture::None;
  uint32_t at = 0;
  for (; t < 200 && first == Gesture::None; t += 5) {
    first = d.update(true, t).gesture;
    at = t;
  }
  EXPECT_EQ(first, Gesture::Press);
  EXPECT_LE(at, 40u) << "press on the debounced down edge, no double-click wait";
  // And a double click is two presses.
  Debouncer d2(c);
  EXPECT_EQ(run(d2, {{true, 100}, {false, 150}, {true, 100}}),
            (std::vector<Gesture>{Gesture::Press, Gesture::Press}));
}

TEST(Debounce, HeldAtBootNeedsARelease) {
  Debouncer d;
  d.reset(true, 0);
  for (uint32_t t = 5; t < 3000; t += 5) EXPECT_EQ(d.update(true, t).gesture, Gesture::None);
}

TEST(Debounce, LevelChangesAreReported) {
  Debouncer d;
  d.reset(false, 0);
  int changes = 0;
  for (uint32_t t = 5; t <= 200; t += 5) changes += d.update(t > 50 && t < 150, t).changed;
  EXPECT_EQ(changes, 2);
  EXPECT_FALSE(d.level());
}

TEST(Backoff, GrowsWithinBoundsUpToCap) {
  Backoff b(1000, 60000);
  uint32_t ceiling = 1000;
  for (int i = 0; i < 20; ++i) {
    for (uint32_t r : {0u, 1u, 12345u, 0xFFFFFFFFu}) {
      Backoff probe = b;
      const uint32_t d = probe.next(r);
      EXPECT_GE(d, ceiling / 2) << i;
      EXPECT_LE(d, ceiling) << i;
    }
    b.next(0);
    ceiling = ceiling * 2 > 60000 ? 60000 : ceiling * 2;
  }
  EXPECT_EQ(b.ceiling(), 60000u);
}

TEST(Backoff, JitterUsesTheRandomSource) {
  Backoff a(1000, 60000), b(1000, 60000);
  EXPECT_EQ(a.next(0), 500u);
  EXPECT_EQ(b.next(500), 1000u);
}

TEST(Backoff, ResetStartsOver) {
  Backoff b(100, 1000);
  for (int i = 0; i < 10; ++i) b.next(7);
  EXPECT_EQ(b.ceiling(), 1000u);
  b.reset();
  EXPECT_EQ(b.attempts(), 0u);
  EXPECT_LE(b.next(0xFFFFFFFF), 100u);
}

TEST(Backoff, NoOverflowAfterManyAttempts) {
  Backoff b(1000, 0xFFFFFFFFu);
  for (int i = 0; i < 100000; ++i) b.next(static_cast<uint32_t>(i));
  EXPECT_EQ(b.ceiling(), 0xFFFFFFFFu);
}
