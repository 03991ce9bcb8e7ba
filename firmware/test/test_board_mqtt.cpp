#include "board_fixture.h"

using namespace hearth_test;

namespace {

const std::string kPrefix = std::string("hearth/home/") + kBoardId + "/";

const Published* findTopic(const std::vector<Published>& pubs, const std::string& topic) {
  for (const auto& p : pubs) {
    if (p.topic == topic) return &p;
  }
  return nullptr;
}

}  // namespace

TEST_F(BoardTest, UnprovisionedBoardNeverConnects) {
  start();
  advance(120000, 50);
  EXPECT_EQ(hal.connectCalls, 0);
  EXPECT_FALSE(board->provisioned());
}

TEST_F(BoardTest, ProvisioningStoresNvsAcksAndConnectsWithLwt) {
  start();
  serial();
  send(R"({"v":1,"t":"prov","id":"p1","ssid":"wifi","pass":"wpass","host":"192.168.1.5","port":1884,)"
       R"("user":"a1b2c3d4e5f6","mqpass":"s3cret","site":"home"})");
  Msg ack(only(serial(), "ack"));
  EXPECT_EQ(ack.str("id"), "p1");
  EXPECT_TRUE(ack.boolean("ok"));
  EXPECT_EQ(hal.nvs["ssid"], "wifi");
  EXPECT_EQ(hal.nvs["pass"], "wpass");
  EXPECT_EQ(hal.nvs["host"], "192.168.1.5");
  EXPECT_EQ(hal.nvs["port"], "1884");
  EXPECT_EQ(hal.nvs["user"], kBoardId);
  EXPECT_EQ(hal.nvs["mqpass"], "s3cret");
  EXPECT_EQ(hal.nvs["site"], "home");
  EXPECT_TRUE(board->provisioned());
  board->tick(hal.now);
  ASSERT_EQ(hal.connectCalls, 1);
  EXPECT_EQ(hal.host, "192.168.1.5");
  EXPECT_EQ(hal.port, 1884);
  EXPECT_EQ(hal.clientId, std::string("hearth-") + kBoardId);
  EXPECT_EQ(hal.user, kBoardId);
  EXPECT_EQ(hal.password, "s3cret");
  EXPECT_EQ(hal.willTopic, kPrefix + "status");
  EXPECT_EQ(hal.willPayload, "offline");
  EXPECT_TRUE(hal.willRetain);
  EXPECT_EQ(hal.willQos, 1);
  EXPECT_EQ(hal.keepAlive, 15);
}

TEST_F(BoardTest, ProvisioningSurvivesReboot) {
  start();
  send(R"({"v":1,"t":"prov","id":"p1","host":"h","site":"home"})");
  reboot();
  EXPECT_TRUE(board->provisioned());
  EXPECT_EQ(board->creds().port, 1883);
  EXPECT_STREQ(board->creds().user, kBoardId) << "username defaults to the board id";
}

TEST_F(BoardTest, BadProvisioningIsRefusedAndNothingIsStored) {
  start();
  serial();
  send(R"({"v":1,"t":"prov","id":"p1","host":"h","site":"Not Valid"})");
  EXPECT_EQ(Msg(only(serial(), "ack")).str("err"), "bad_value");
  send(R"({"v":1,"t":"prov","id":"p2","site":"home"})");
  EXPECT_EQ(Msg(only(serial(), "ack")).str("err"), "bad_message");
  hal.nvsFails = true;
  send(R"({"v":1,"t":"prov","id":"p3","host":"h","site":"home"})");
  EXPECT_EQ(Msg(only(serial(), "ack")).str("err"), "busy");
  EXPECT_EQ(hal.nvs.count("host"), 0u);
  EXPECT_FALSE(board->provisioned());
}

TEST_F(BoardTest, ConnectPublishesOnlineHelloStatesThenSubscribes) {
  provisionNvs();
  start();
  connect();
  const auto pubs = hal.takePublished();
  ASSERT_GE(pubs.size(), 3u);
  EXPECT_EQ(pubs[0].topic, kPrefix + "status");
  EXPECT_EQ(pubs[0].payload, "online");
  EXPECT_TRUE(pubs[0].retained);
  EXPECT_EQ(pubs[0].qos, 1);
  EXPECT_EQ(pubs[1].topic, kPrefix + "hello");
  EXPECT_TRUE(pubs[1].retained);
  EXPECT_EQ(Msg(pubs[1].payload).str("board"), kBoardId);
  for (size_t i = 2; i < pubs.size(); ++i) {
    EXPECT_EQ(pubs[i].topic.rfind(kPrefix + "state/", 0), 0u) << pubs[i].topic;
    EXPECT_TRUE(pubs[i].retained);
    EXPECT_EQ(pubs[i].qos, 1);
    EXPECT_EQ(pubs[i].topic, kPrefix + "state/" + Msg(pubs[i].payload).str("e"));
  }
  // Every entity with a value: 7 (the two sensors have no reading yet).
  EXPECT_EQ(pubs.size() - 2, 7u);
  EXPECT_EQ(Msg(findTopic(pubs, kPrefix + "state/status_led")->payload).str("val"), "idle");
  ASSERT_EQ(hal.subscribed.size(), 1u);
  EXPECT_EQ(hal.subscribed[0], kPrefix + "cmd");
  EXPECT_EQ(hal.notes.back(), "mqtt connected");
}

TEST_F(BoardTest, MqttCommandIsAckedOnMqttAndStateGoesToBothLinks) {
  provisionNvs();
  start();
  connect();
  hal.takePublished();
  serial();
  mqttSend(cmd("m1", "light", "set", R"(,"val":1)"));
  const auto pubs = hal.takePublished();
  const Published* ack = findTopic(pubs, kPrefix + "ack");
  ASSERT_NE(ack, nullptr);
  EXPECT_FALSE(ack->retained);
  EXPECT_EQ(ack->qos, 1);
  EXPECT_EQ(Msg(ack->payload).str("id"), "m1");
  const Published* st = findTopic(pubs, kPrefix + "state/light");
  ASSERT_NE(st, nullptr);
  EXPECT_TRUE(st->retained);
  const auto ser = serial();
  EXPECT_TRUE(ofType(ser, "ack").empty()) << "the ack goes back on the link the command came from";
  EXPECT_EQ(ofType(ser, "state").size(), 1u);
  // A serial retry of the same id is answered on serial from the memory.
  send(cmd("m1", "light", "set", R"(,"val":1)"));
  EXPECT_EQ(Msg(only(serial(), "ack")).str("id"), "m1");
  EXPECT_EQ(findTopic(hal.takePublished(), kPrefix + "ack"), nullptr);
}

TEST_F(BoardTest, EventsGoToBothLinks) {
  provisionNvs();
  start();
  connect();
  hal.takePublished();
  hal.pins[13] = false;
  advance(60);
  const auto pubs = hal.takePublished();
  const Published* ev = findTopic(pubs, kPrefix + "event");
  ASSERT_NE(ev, nullptr);
  EXPECT_FALSE(ev->retained);
  EXPECT_EQ(ev->qos, 1);
  EXPECT_EQ(Msg(ev->payload).str("ev"), "press");
  EXPECT_EQ(ofType(serial(), "event").size(), 1u);
}

TEST_F(BoardTest, TelemetryOnMqttIsQos0WithRssi) {
  provisionNvs();
  start();
  connect();
  hal.takePublished();
  advance(10000, 10);
  const auto pubs = hal.takePublished();
  const Published* tele = findTopic(pubs, kPrefix + "tele");
  ASSERT_NE(tele, nullptr);
  EXPECT_EQ(tele->qos, 0);
  EXPECT_FALSE(tele->retained);
  EXPECT_EQ(Msg(tele->payload).num("rssi"), -61);
}

TEST_F(BoardTest, MqttPingGetsTeleAndHello) {
  provisionNvs();
  start();
  connect();
  hal.takePublished();
  mqttSend(R"({"v":1,"t":"ping","hello":1})");
  const auto pubs = hal.takePublished();
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_EQ(pubs[0].topic, kPrefix + "tele");
  EXPECT_EQ(pubs[1].topic, kPrefix + "hello");
  EXPECT_TRUE(serial().size() <= 1u);  // at most the boot hello
}

TEST_F(BoardTest, ProvOverMqttAndForeignTopicsAreDropped) {
  provisionNvs();
  start();
  connect();
  hal.takePublished();
  const uint32_t bad = board->badCount();
  mqttSend(R"({"v":1,"t":"prov","id":"p9","host":"evil","site":"home"})");
  mqttSend(cmd("x1", "light", "toggle"), kPrefix + "state/light");
  mqttSend(std::string(1100, ' '));
  EXPECT_EQ(board->badCount(), bad + 3);
  EXPECT_TRUE(hal.takePublished().empty());
  EXPECT_STREQ(board->creds().host, "10.0.0.2");
}

TEST_F(BoardTest, ReconnectRepublishesCurrentState) {
  provisionNvs();
  start();
  connect();
  send(cmd("c1", "light", "set", R"(,"val":1)"));
  hal.takePublished();
  board->onMqttDisconnected();
  EXPECT_EQ(board->mqttState(), MqttState::Disconnected);
  EXPECT_EQ(hal.notes.back(), "mqtt disconnected");
  hal.rnd = 0;
  advance(400);
  EXPECT_EQ(hal.connectCalls, 1) << "backoff: not before base/2";
  advance(700);
  ASSERT_EQ(hal.connectCalls, 2);
  board->onMqttConnected();
  const auto pubs = hal.takePublished();
  ASSERT_NE(findTopic(pubs, kPrefix + "status"), nullptr);
  EXPECT_EQ(findTopic(pubs, kPrefix + "status")->payload, "online");
  ASSERT_NE(findTopic(pubs, kPrefix + "hello"), nullptr);
  const Published* light = findTopic(pubs, kPrefix + "state/light");
  ASSERT_NE(light, nullptr);
  EXPECT_EQ(Msg(light->payload).num("val"), 1);
  EXPECT_EQ(hal.subscribed.size(), 2u) << "resubscribed (clean session)";
}

TEST_F(BoardTest, FailedAttemptsBackOffExponentially) {
  provisionNvs();
  hal.connectResult = false;  // broker refuses at once
  hal.rnd = 0xFFFFFFFF;       // always the top of the jitter range
  start();
  std::vector<uint32_t> attempts;
  int seen = 0;
  for (int i = 0; i < 400000 && attempts.size() < 8; i += 10) {
    hal.now += 10;
    board->tick(hal.now);
    if (hal.connectCalls != seen) {
      seen = hal.connectCalls;
      attempts.push_back(hal.now);
    }
  }
  ASSERT_EQ(attempts.size(), 8u);
  std::vector<uint32_t> gaps;
  for (size_t i = 1; i < attempts.size(); ++i) gaps.push_back(attempts[i] - attempts[i - 1]);
  // rnd % (d/2 + 1) with rnd = 2^32-1: deterministic, within [d/2, d] of 1, 2, 4, 8, 16, 32, 60 s.
  const uint32_t ceilings[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000};
  for (size_t i = 0; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], ceilings[i] / 2) << i;
    EXPECT_LE(gaps[i], ceilings[i] + 10) << i;
  }
}

TEST_F(BoardTest, ConnectTimeoutGivesUpAndRetries) {
  provisionNvs();
  start();
  board->tick(hal.now);
  ASSERT_EQ(board->mqttState(), MqttState::Connecting);
  advance(cfg.connectTimeoutMs + 10, 10);
  EXPECT_EQ(board->mqttState(), MqttState::Disconnected);
  EXPECT_EQ(hal.disconnects, 1);
  advance(1100, 10);
  EXPECT_EQ(hal.connectCalls, 2);
}

TEST_F(BoardTest, StableConnectionResetsBackoff) {
  provisionNvs();
  hal.rnd = 0xFFFFFFFF;
  start();
  for (int i = 0; i < 5; ++i) {  // five quick failures grow the backoff
    board->tick(hal.now);
    board->onMqttDisconnected();
    advance(70000, 100);
  }
  board->tick(hal.now);
  if (board->mqttState() != MqttState::Connecting) advance(70000, 100);
  ASSERT_EQ(board->mqttState(), MqttState::Connecting);
  board->onMqttConnected();
  advance(Board::kStableLinkMs + 100, 100);
  board->onMqttDisconnected();
  const int calls = hal.connectCalls;
  advance(1100, 10);
  EXPECT_EQ(hal.connectCalls, calls + 1) << "back to the 1 s step after a stable session";
}

TEST_F(BoardTest, ReprovisionMovesToTheNewSite) {
  provisionNvs();
  start();
  connect();
  hal.takePublished();
  send(R"({"v":1,"t":"prov","id":"p2","host":"10.0.0.9","site":"cabin"})");
  const auto pubs = hal.takePublished();
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].topic, kPrefix + "status");
  EXPECT_EQ(pubs[0].payload, "offline") << "a clean DISCONNECT suppresses the will: say it ourselves";
  EXPECT_EQ(hal.disconnects, 1);
  board->tick(hal.now);
  EXPECT_EQ(hal.connectCalls, 2);
  EXPECT_EQ(hal.host, "10.0.0.9");
  EXPECT_EQ(hal.willTopic, std::string("hearth/cabin/") + kBoardId + "/status");
  board->onMqttConnected();
  EXPECT_EQ(hal.subscribed.back(), std::string("hearth/cabin/") + kBoardId + "/cmd");
}

TEST_F(BoardTest, OverridesReplaceNvsAtBoot) {
  provisionNvs();
  MqttCreds o{};
  strcpy(o.host, "127.0.0.1");
  o.port = 18830;
  strcpy(o.site, "lab");
  cfg.overrides = &o;
  start();
  board->tick(hal.now);
  EXPECT_EQ(hal.host, "127.0.0.1");
  EXPECT_EQ(hal.port, 18830);
  EXPECT_EQ(hal.willTopic, std::string("hearth/lab/") + kBoardId + "/status");
  EXPECT_EQ(hal.password, "secret") << "fields not overridden come from NVS";
  EXPECT_EQ(hal.nvs["host"], "10.0.0.2") << "overrides are not persisted";
}

TEST_F(BoardTest, LateCallbacksAreIgnored) {
  provisionNvs();
  start();
  board->onMqttConnected();  // not connecting: ignored
  EXPECT_EQ(board->mqttState(), MqttState::Disconnected);
  mqttSend(cmd("z", "light", "toggle"));  // not connected: ignored, nothing published
  EXPECT_TRUE(hal.takePublished().empty());
  EXPECT_EQ(board->value(static_cast<size_t>(board->entities().find("light"))), 0);
}
