#include <gtest/gtest.h>

#include <string>

#include "fake_hal.h"
#include "message.h"

using namespace hearth;
using hearth_test::Msg;

namespace {

JsonReader reader;
Incoming in;

const Incoming& decode(const std::string& s) {
  decodeIncoming(s.data(), s.size(), reader, in);
  return in;
}

}  // namespace

TEST(Message, DecodeCmd) {
  const auto& m = decode(R"({"v":1,"t":"cmd","id":"c1","e":"light","a":"set","val":1,"future":[1,2]})");
  ASSERT_EQ(m.type, MsgType::Cmd);
  EXPECT_TRUE(m.hasId);
  EXPECT_STREQ(m.cmd.id, "c1");
  EXPECT_STREQ(m.cmd.entity, "light");
  EXPECT_EQ(m.cmd.action, Action::Set);
  EXPECT_TRUE(m.cmd.hasVal);
  EXPECT_EQ(m.cmd.val, 1);
  EXPECT_EQ(m.cmd.error, AckError::None);
}

TEST(Message, DecodeCmdProblems) {
  EXPECT_FALSE(decode(R"({"v":1,"t":"cmd","e":"light","a":"set"})").hasId);
  EXPECT_FALSE(decode(R"({"v":1,"t":"cmd","id":"","e":"light","a":"set"})").hasId);
  EXPECT_FALSE(decode(R"({"v":1,"t":"cmd","id":"12345678901234567","e":"l","a":"get"})").hasId) << "id > 16";
  EXPECT_FALSE(decode(R"({"v":1,"t":"cmd","id":7,"e":"l","a":"get"})").hasId);
  EXPECT_EQ(decode(R"({"v":1,"t":"cmd","id":"c","e":"l","a":"fly"})").cmd.error, AckError::BadAction);
  EXPECT_EQ(decode(R"({"v":1,"t":"cmd","id":"c","e":"l"})").cmd.error, AckError::BadAction);
  EXPECT_EQ(decode(R"({"v":1,"t":"cmd","id":"c","a":"set"})").cmd.error, AckError::BadMessage);
  EXPECT_EQ(decode(R"({"v":1,"t":"cmd","id":"c","e":5,"a":"set"})").cmd.error, AckError::BadMessage);
  EXPECT_EQ(decode(R"({"v":1,"t":"cmd","id":"c","a":"led","mode":"idle"})").cmd.error, AckError::None);
  EXPECT_FALSE(decode(R"({"v":1,"t":"cmd","id":"c","e":"l","a":"set","val":true})").cmd.hasVal);
  EXPECT_FALSE(decode(R"({"v":1,"t":"cmd","id":"c","e":"l","a":"set","val":"1"})").cmd.hasVal);
}

TEST(Message, VersionAndType) {
  EXPECT_EQ(decode(R"({"v":2,"t":"ping"})").type, MsgType::Invalid);
  EXPECT_EQ(decode(R"({"v":"1","t":"ping"})").type, MsgType::Invalid);
  EXPECT_EQ(decode(R"({"t":"ping"})").type, MsgType::Invalid);
  EXPECT_EQ(decode(R"({"v":1,"t":"hello"})").type, MsgType::Invalid);
  EXPECT_EQ(decode(R"({"v":1,"t":"teleport"})").type, MsgType::Invalid);
  EXPECT_EQ(decode(R"({"v":1})").type, MsgType::Invalid);
  EXPECT_EQ(decode("not json").type, MsgType::Invalid);
}

TEST(Message, Ping) {
  EXPECT_TRUE(decode(R"({"v":1,"t":"ping","hello":1})").pingHello);
  EXPECT_TRUE(decode(R"({"v":1,"t":"ping","hello":true})").pingHello);
  EXPECT_FALSE(decode(R"({"v":1,"t":"ping","hello":0})").pingHello);
  EXPECT_FALSE(decode(R"({"v":1,"t":"ping"})").pingHello);
}

TEST(Message, Prov) {
  const auto& m = decode(
      R"({"v":1,"t":"prov","id":"p1","ssid":"home","pass":"pw","host":"10.0.0.2","port":1884,"user":"u","mqpass":"mp","site":"home"})");
  ASSERT_EQ(m.type, MsgType::Prov);
  EXPECT_EQ(m.prov.error, AckError::None);
  EXPECT_STREQ(m.prov.host, "10.0.0.2");
  EXPECT_EQ(m.prov.port, 1884);
  EXPECT_STREQ(m.prov.site, "home");
  EXPECT_EQ(decode(R"({"v":1,"t":"prov","id":"p","host":"h","site":"s","port":"1885"})").prov.port, 1885);
  EXPECT_EQ(decode(R"({"v":1,"t":"prov","id":"p","host":"h","site":"s"})").prov.port, 1883);
  EXPECT_EQ(decode(R"({"v":1,"t":"prov","id":"p","site":"s"})").prov.error, AckError::BadMessage);
  EXPECT_EQ(decode(R"({"v":1,"t":"prov","id":"p","host":"h","site":"S P"})").prov.error, AckError::BadValue);
  EXPECT_EQ(decode(R"({"v":1,"t":"prov","id":"p","host":"h","site":"s","port":0})").prov.error, AckError::BadValue);
  EXPECT_EQ(decode(R"({"v":1,"t":"prov","id":"p","host":"h","site":"s","port":70000})").prov.error, AckError::BadValue);
  EXPECT_EQ(decode(R"({"v":1,"t":"prov","id":"p","host":"h","site":"s","ssid":5})").prov.error, AckError::BadMessage);
  const std::string longSsid(40, 'x');
  EXPECT_EQ(decode(R"({"v":1,"t":"prov","id":"p","host":"h","site":"s","ssid":")" + longSsid + "\"}").prov.error,
            AckError::BadValue);
}

TEST(Message, Encoders) {
  char buf[256];
  ASSERT_GT(encodeState(buf, sizeof(buf), "temp", Value::number(21.5)), 0u);
  EXPECT_STREQ(buf, R"({"v":1,"t":"state","e":"temp","val":21.5})");
  ASSERT_GT(encodeState(buf, sizeof(buf), "status_led", Value::str("listening")), 0u);
  EXPECT_STREQ(buf, R"({"v":1,"t":"state","e":"status_led","val":"listening"})");
  ASSERT_GT(encodeEvent(buf, sizeof(buf), "talk", Gesture::Press), 0u);
  EXPECT_STREQ(buf, R"({"v":1,"t":"event","e":"talk","ev":"press"})");
  ASSERT_GT(encodeTele(buf, sizeof(buf), TeleInfo{3, 60, 200000, -55, 2}), 0u);
  EXPECT_STREQ(buf, R"({"v":1,"t":"tele","seq":3,"up":60,"heap":200000,"rssi":-55,"bad":2})");
  ASSERT_GT(encodeHb(buf, sizeof(buf), 9, 18), 0u);
  EXPECT_STREQ(buf, R"({"v":1,"t":"hb","seq":9,"up":18})");
  AckRecord ok{};
  strcpy(ok.id, "c1");
  ok.hasVal = true;
  ok.num = 1;
  ASSERT_GT(encodeAck(buf, sizeof(buf), ok), 0u);
  EXPECT_STREQ(buf, R"({"v":1,"t":"ack","id":"c1","ok":true,"val":1})");
  AckRecord err{};
  strcpy(err.id, "c\"2");
  err.err = AckError::ReadOnly;
  ASSERT_GT(encodeAck(buf, sizeof(buf), err), 0u);
  EXPECT_STREQ(buf, R"({"v":1,"t":"ack","id":"c\"2","ok":false,"err":"read_only"})");
  EXPECT_EQ(encodeHb(buf, 10, 1, 1), 0u) << "too small";
}

TEST(Message, Hello) {
  EntityTable t;
  ASSERT_TRUE(t.load("profile=p\nstatus_led=2\nid=l;kind=switch;name=L;pin=4\n"));
  char buf[512];
  const HelloInfo h{"a1b2c3d4e5f6", "0.1.0", t.profile(), 7};
  const size_t n = encodeHello(buf, sizeof(buf), h, t);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(encodeHello(nullptr, 0, h, t), n) << "measuring gives the same size";
  EXPECT_STREQ(buf,
               R"({"v":1,"t":"hello","board":"a1b2c3d4e5f6","fw":"0.1.0","profile":"p","boot":7,"entities":[)"
               R"({"id":"status_led","kind":"status_led","name":"Status LED","area":"","unit":"","min":0,"max":1},)"
               R"({"id":"l","kind":"switch","name":"L","area":"","unit":"","min":0,"max":1}]})");
  Msg m(buf);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.num("boot"), 7);
}
