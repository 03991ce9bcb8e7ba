#include <cmath>

#include "board_fixture.h"

using namespace hearth_test;

TEST_F(BoardTest, BootSendsHelloAndCountsBoots) {
  start();
  const auto msgs = serial();
  Msg hello(only(msgs, "hello"));
  EXPECT_EQ(hello.str("board"), kBoardId);
  EXPECT_EQ(hello.str("profile"), "test-board");
  EXPECT_EQ(hello.str("fw"), kFirmwareVersion);
  EXPECT_EQ(hello.num("boot"), 1);
  EXPECT_EQ(hal.nvs["boot"], "1");
  reboot();
  EXPECT_EQ(Msg(only(serial(), "hello")).num("boot"), 2);
  EXPECT_EQ(board->bootCount(), 2u);
}

TEST_F(BoardTest, OutputsBootOffRespectingInversion) {
  start();
  EXPECT_TRUE(hal.pins[26]) << "active-low relay: off is high";
  EXPECT_EQ(hal.modes[26], PinMode::Output);
  EXPECT_EQ(hal.modes[25], PinMode::Pwm);
  EXPECT_EQ(hal.pwm[25], 0.0f);
  EXPECT_FALSE(hal.pins[27]);
  EXPECT_EQ(hal.modes[13], PinMode::InputPullup);
  EXPECT_EQ(hal.modes[5], PinMode::InputPullup);
}

TEST_F(BoardTest, SetAcksThenReportsState) {
  start();
  serial();
  send(cmd("c1", "light", "set", R"(,"val":1)"));
  const auto msgs = serial();
  ASSERT_EQ(msgs.size(), 2u);
  Msg ack(msgs[0]);
  EXPECT_EQ(ack.str("t"), "ack");
  EXPECT_EQ(ack.str("id"), "c1");
  EXPECT_TRUE(ack.boolean("ok"));
  EXPECT_EQ(ack.num("val"), 1);
  Msg st(msgs[1]);
  EXPECT_EQ(st.str("t"), "state");
  EXPECT_EQ(st.str("e"), "light");
  EXPECT_EQ(st.num("val"), 1);
  EXPECT_FALSE(hal.pins[26]) << "inverted: on is low";
  // Setting the same value again: acked, no state change to report.
  send(cmd("c2", "light", "set", R"(,"val":1)"));
  EXPECT_EQ(ofType(serial(), "state").size(), 0u);
}

TEST_F(BoardTest, DuplicateIdIsNotExecutedTwice) {
  start();
  send(cmd("t1", "light", "toggle"));
  EXPECT_EQ(board->value(static_cast<size_t>(board->entities().find("light"))), 1);
  serial();
  send(cmd("t1", "light", "toggle"));  // the host's retry after a lost ack
  const auto msgs = serial();
  ASSERT_EQ(msgs.size(), 1u) << "only the remembered ack, no state";
  EXPECT_EQ(Msg(msgs[0]).num("val"), 1);
  EXPECT_EQ(board->value(static_cast<size_t>(board->entities().find("light"))), 1);
}

TEST_F(BoardTest, AckMemoryKeepsTheLastSixteen) {
  start();
  for (int i = 0; i <= 16; ++i) send(cmd("id" + std::to_string(i), "light", "toggle"));
  const size_t light = static_cast<size_t>(board->entities().find("light"));
  const double before = board->value(light);
  send(cmd("id1", "light", "toggle"));  // still remembered
  EXPECT_EQ(board->value(light), before);
  send(cmd("id0", "light", "toggle"));  // forgotten: the 17th id pushed it out
  EXPECT_NE(board->value(light), before);
}

TEST_F(BoardTest, RebootClearsTheAckMemory) {
  start();
  send(cmd("r1", "light", "toggle"));
  reboot();
  send(cmd("r1", "light", "toggle"));
  EXPECT_EQ(board->value(static_cast<size_t>(board->entities().find("light"))), 1);
}

TEST_F(BoardTest, ErrorCodes) {
  start();
  hal.sensors["temp"] = 21.5;
  advance(10);
  serial();
  struct Case {
    std::string json;
    const char* err;
  } const cases[] = {
      {cmd("e1", "nope", "set", R"(,"val":1)"), "unknown_entity"},
      {cmd("e2", "temp", "set", R"(,"val":1)"), "read_only"},
      {cmd("e3", "contact", "toggle"), "read_only"},
      {cmd("e4", "talk", "set", R"(,"val":1)"), "read_only"},
      {cmd("e5", "light", "set", R"(,"val":2)"), "bad_value"},
      {cmd("e6", "light", "set", R"(,"val":0.5)"), "bad_value"},
      {cmd("e7", "light", "set"), "bad_value"},
      {cmd("e8", "light", "set", R"(,"val":"1")"), "bad_value"},
      {cmd("e9", "dim", "set", R"(,"val":101)"), "bad_value"},
      {cmd("e10", "dim", "set", R"(,"val":-1)"), "bad_value"},
      {cmd("e11", "light", "fly"), "bad_action"},
      {cmd("e12", "light", "led", R"(,"mode":"listening")"), "bad_action"},
      {cmd("e13", "status_led", "set", R"(,"val":1)"), "bad_action"},
      {cmd("e14", "status_led", "led", R"(,"mode":"disco")"), "bad_value"},
      {cmd("e15", "temp", "led", R"(,"mode":"idle")"), "read_only"},
      {R"({"v":1,"t":"cmd","id":"e16","a":"set","val":1})", "bad_message"},
      {R"({"v":1,"t":"cmd","id":"e17","e":["x"],"a":"set"})", "bad_message"},
      {cmd("e18", "a_very_long_entity_name_that_cannot_exist", "get"), "unknown_entity"},
  };
  for (const auto& c : cases) {
    send(c.json);
    const auto msgs = serial();
    ASSERT_EQ(msgs.size(), 1u) << c.json;
    Msg ack(msgs[0]);
    EXPECT_FALSE(ack.boolean("ok")) << c.json;
    EXPECT_EQ(ack.str("err"), c.err) << c.json;
    EXPECT_FALSE(ack.has("val"));
  }
  EXPECT_TRUE(hal.pins[26]) << "nothing switched";
}

TEST_F(BoardTest, CommandWithoutIdGetsNoAckAndIsCounted) {
  start();
  serial();
  const uint32_t bad = board->badCount();
  send(R"({"v":1,"t":"cmd","e":"light","a":"set","val":1})");
  send(R"({"v":2,"t":"cmd","id":"x","e":"light","a":"set","val":1})");
  send(R"({"v":1,"t":"hello"})");
  send("not json at all");
  EXPECT_TRUE(serial().empty());
  EXPECT_EQ(board->badCount(), bad + 4);
  EXPECT_TRUE(hal.pins[26]);
}

TEST_F(BoardTest, GetOnUnreadSensorIsBusyAndNotRemembered) {
  start();
  serial();
  send(cmd("g1", "temp", "get"));
  EXPECT_EQ(Msg(only(serial(), "ack")).str("err"), "busy");
  hal.sensors["temp"] = 19.25;
  advance(Board::kCoverPulseMs);  // any time: the first poll is immediate after boot, then every 2 s
  advance(2000);
  serial();
  send(cmd("g1", "temp", "get"));  // same id: executed now, because busy was not remembered
  Msg ack(only(serial(), "ack"));
  EXPECT_TRUE(ack.boolean("ok"));
  EXPECT_DOUBLE_EQ(ack.num("val"), 19.3);
}

TEST_F(BoardTest, GetAnswersEveryKind) {
  start();
  serial();
  send(cmd("g1", "light", "get"));
  EXPECT_EQ(Msg(only(serial(), "ack")).num("val"), 0);
  send(cmd("g2", "contact", "get"));
  EXPECT_EQ(Msg(only(serial(), "ack")).num("val"), 0);
  send(cmd("g3", "status_led", "get"));
  EXPECT_EQ(Msg(only(serial(), "ack")).str("val"), "idle");
}

TEST_F(BoardTest, DimmerRoundsAndTogglesBackToLastLevel) {
  start();
  send(cmd("d1", "dim", "set", R"(,"val":37.4)"));
  auto msgs = serial();
  EXPECT_EQ(Msg(only(msgs, "ack")).num("val"), 37);
  EXPECT_FLOAT_EQ(hal.pwm[25], 0.37f);
  send(cmd("d2", "dim", "toggle"));
  EXPECT_EQ(Msg(only(serial(), "ack")).num("val"), 0);
  EXPECT_FLOAT_EQ(hal.pwm[25], 0.0f);
  send(cmd("d3", "dim", "toggle"));
  EXPECT_EQ(Msg(only(serial(), "ack")).num("val"), 37);
}

TEST_F(BoardTest, CoverIsPulsedAndBusyWhilePulsing) {
  start();
  serial();
  send(cmd("o1", "door", "set", R"(,"val":1)"));
  EXPECT_TRUE(hal.pins[27]);
  serial();
  send(cmd("o2", "door", "set", R"(,"val":0)"));
  EXPECT_EQ(Msg(only(serial(), "ack")).str("err"), "busy");
  advance(Board::kCoverPulseMs + 10);
  EXPECT_FALSE(hal.pins[27]) << "relay released after the pulse";
  EXPECT_EQ(board->value(static_cast<size_t>(board->entities().find("door"))), 1) << "value is the commanded position";
  send(cmd("o2", "door", "set", R"(,"val":0)"));  // the busy retry now runs
  EXPECT_TRUE(Msg(only(serial(), "ack")).boolean("ok"));
  EXPECT_TRUE(hal.pins[27]);
}

TEST_F(BoardTest, StatusLedModes) {
  start();
  serial();
  send(cmd("l1", "status_led", "led", R"(,"mode":"listening")"));
  auto msgs = serial();
  EXPECT_EQ(Msg(only(msgs, "ack")).str("val"), "listening");
  EXPECT_EQ(Msg(only(msgs, "state")).str("val"), "listening");
  EXPECT_EQ(board->ledMode(), LedMode::Listening);
  advance(20);
  EXPECT_TRUE(hal.pins[2]) << "listening is steady on";
  send(R"({"v":1,"t":"cmd","id":"l2","a":"led","mode":"thinking"})");  // no e: the status LED
  EXPECT_EQ(Msg(only(serial(), "ack")).str("val"), "thinking");
  int toggles = 0;
  bool last = hal.pins[2];
  for (int i = 0; i < 200; ++i) {
    advance(5);
    toggles += hal.pins[2] != last;
    last = hal.pins[2];
  }
  EXPECT_GE(toggles, 4) << "thinking blinks";
  EXPECT_EQ(hal.notes[0], "led listening");
}

TEST_F(BoardTest, PushToTalkPressIsImmediateAndButtonGesturesAreEvents) {
  start();
  serial();
  hal.pins[13] = false;  // press talk (active low)
  advance(60);
  auto msgs = serial();
  Msg ev(only(msgs, "event"));
  EXPECT_EQ(ev.str("e"), "talk");
  EXPECT_EQ(ev.str("ev"), "press");
  EXPECT_TRUE(ofType(msgs, "state").empty()) << "buttons report gestures, not levels";
  hal.pins[13] = true;
  advance(100);
  for (const auto& m : serial()) ADD_FAILURE() << m;

  hal.pins[14] = false;  // short press on the ordinary button
  advance(100);
  hal.pins[14] = true;
  advance(100);
  EXPECT_TRUE(ofType(serial(), "event").empty()) << "waits for the double-click window";
  advance(400);
  EXPECT_EQ(Msg(only(serial(), "event")).str("ev"), "press");

  hal.pins[14] = false;  // long press
  advance(1000);
  EXPECT_EQ(Msg(only(serial(), "event")).str("ev"), "long");
  hal.pins[14] = true;
  advance(500);
  EXPECT_TRUE(ofType(serial(), "event").empty()) << "no second gesture on release";
}

TEST_F(BoardTest, ContactChangesAreDebouncedStates) {
  start();
  serial();
  hal.pins[5] = true;
  advance(10);
  hal.pins[5] = false;  // a 10 ms bounce: ignored
  advance(100);
  EXPECT_TRUE(serial().empty());
  hal.pins[5] = true;
  advance(100);
  Msg st(only(serial(), "state"));
  EXPECT_EQ(st.str("e"), "contact");
  EXPECT_EQ(st.num("val"), 1);
}

TEST_F(BoardTest, SensorsReportOnChangeWithHysteresisAndPeriodically) {
  cfg.teleMs = 60000;
  start();
  serial();
  hal.sensors["temp"] = 21.54;
  hal.sensors["hum"] = 45;
  advance(10);
  auto states = ofType(serial(), "state");
  ASSERT_EQ(states.size(), 2u);
  EXPECT_DOUBLE_EQ(Msg(states[0]).num("val"), 21.5);
  hal.sensors["temp"] = 21.6;  // below the 0.2 C hysteresis
  advance(2100);
  EXPECT_TRUE(ofType(serial(), "state").empty());
  hal.sensors["temp"] = 23.0;
  advance(2100);
  EXPECT_DOUBLE_EQ(Msg(only(serial(), "state")).num("val"), 23);
  hal.sensors["temp"] = 250;  // out of the sensor's range: a bad read, ignored
  advance(2100);
  EXPECT_TRUE(ofType(serial(), "state").empty());
  advance(60000);
  EXPECT_EQ(ofType(serial(), "state").size(), 2u) << "every tele period, even unchanged";
}

TEST_F(BoardTest, HeartbeatAndTelemetryOnSerial) {
  start();
  serial();
  advance(2000);
  Msg hb(only(serial(), "hb"));
  EXPECT_EQ(hb.num("seq"), 1);
  EXPECT_EQ(hb.num("up"), 2);
  const uint8_t junk[] = {0x00, 0x41, 0x42, 0x00};
  board->onSerialBytes(junk, sizeof(junk), hal.now);
  advance(8000);
  auto msgs = serial();
  EXPECT_EQ(ofType(msgs, "hb").size(), 4u);
  Msg tele(only(msgs, "tele"));
  EXPECT_EQ(tele.num("up"), 10);
  EXPECT_EQ(tele.num("heap"), 123456);
  EXPECT_EQ(tele.num("rssi"), 0) << "0 on serial";
  EXPECT_EQ(tele.num("bad"), 1);
}

TEST_F(BoardTest, PingAnswersHbAndHelloWhenAsked) {
  start();
  serial();
  send(R"({"v":1,"t":"ping"})");
  auto msgs = serial();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Msg(msgs[0]).str("t"), "hb");
  send(R"({"v":1,"t":"ping","hello":1})");
  msgs = serial();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(Msg(msgs[1]).str("t"), "hello");
}

TEST_F(BoardTest, OversizedHelloIsRejectedAtBegin) {
  std::string spec;
  for (int i = 0; i < 16; ++i) {
    spec += "id=entity_with_long_id_" + std::to_string(i) +
            ";kind=switch;name=A rather long human readable name;area=somewhere;pin=" + std::to_string(i) + "\n";
  }
  EXPECT_FALSE(board->begin(spec.data(), spec.size(), cfg));
  EXPECT_NE(std::string(board->error()).find("over the 1024-byte limit"), std::string::npos) << board->error();
}

TEST_F(BoardTest, BadBoardIdOrSpecFailsBegin) {
  cfg.boardId = "A1B2C3D4E5F6";
  EXPECT_FALSE(board->begin(kSpec, strlen(kSpec), cfg));
  cfg.boardId = kBoardId;
  const char* bad = "id=x;kind=nope;pin=1";
  EXPECT_FALSE(board->begin(bad, strlen(bad), cfg));
  EXPECT_NE(std::string(board->error()).find("line 1"), std::string::npos);
  EXPECT_TRUE(hal.serialOut.empty()) << "a board that failed to start sends nothing";
}

TEST_F(BoardTest, AckDelayAndDropKnobs) {
  cfg.dropAcks = 1;
  cfg.ackDelayMs = 300;
  start();
  serial();
  send(cmd("k1", "light", "toggle"));
  EXPECT_TRUE(ofType(serial(), "ack").empty()) << "first ack dropped";
  EXPECT_EQ(board->value(static_cast<size_t>(board->entities().find("light"))), 1) << "but executed";
  send(cmd("k1", "light", "toggle"));  // retry
  EXPECT_TRUE(ofType(serial(), "ack").empty()) << "delayed";
  advance(290);
  EXPECT_TRUE(ofType(serial(), "ack").empty());
  advance(20);
  Msg ack(only(serial(), "ack"));
  EXPECT_EQ(ack.str("id"), "k1");
  EXPECT_EQ(ack.num("val"), 1) << "the remembered result, not a second toggle";
  EXPECT_EQ(hal.notes[0], "ack k1 dropped");
}
