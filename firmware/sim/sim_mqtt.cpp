#include "sim_mqtt.h"

#include <mosquitto.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>

#include "board.h"

namespace sim {

SimMqtt::SimMqtt() { mosquitto_lib_init(); }

SimMqtt::~SimMqtt() {
  drop();
  mosquitto_lib_cleanup();
}

void SimMqtt::drop() {
  if (m_ != nullptr) {
    mosquitto_destroy(m_);  // closes the socket; sends nothing
    m_ = nullptr;
  }
  connected_ = false;
}

bool SimMqtt::connect(const hearth::MqttConnectParams& p) {
  drop();
  m_ = mosquitto_new(p.clientId, true, this);
  if (m_ == nullptr) return false;
  // Like the firmware's WiFiClient::setNoDelay: without it Nagle holds each small ack ~40 ms behind a delayed ACK.
  mosquitto_int_option(m_, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_callback_set(m_, &SimMqtt::onConnect);
  mosquitto_disconnect_callback_set(m_, &SimMqtt::onDisconnect);
  mosquitto_message_callback_set(m_, &SimMqtt::onMessage);
  const int willLen = static_cast<int>(strlen(p.willPayload));
  if (mosquitto_will_set(m_, p.willTopic, willLen, p.willPayload, p.willQos, p.willRetain) != MOSQ_ERR_SUCCESS ||
      mosquitto_username_pw_set(m_, p.user, p.password[0] ? p.password : nullptr) != MOSQ_ERR_SUCCESS) {
    drop();
    return false;
  }
  // connect_async: a non-blocking TCP connect; CONNECT goes out from service() when the socket is writable.
  if (mosquitto_connect_async(m_, p.host, p.port, p.keepAliveS) != MOSQ_ERR_SUCCESS) {
    drop();
    return false;
  }
  return true;
}

bool SimMqtt::publish(const char* topic, const uint8_t* payload, size_t len, bool retained, uint8_t qos) {
  if (m_ == nullptr || !connected_) return false;
  return mosquitto_publish(m_, nullptr, topic, static_cast<int>(len), payload, qos, retained) == MOSQ_ERR_SUCCESS;
}

bool SimMqtt::subscribe(const char* topic, uint8_t qos) {
  if (m_ == nullptr || !connected_) return false;
  return mosquitto_subscribe(m_, nullptr, topic, qos) == MOSQ_ERR_SUCCESS;
}

void SimMqtt::disconnect() {
  if (m_ == nullptr) return;
  if (connected_) {
    mosquitto_disconnect(m_);
    mosquitto_loop_write(m_, 1);  // flush what is queued (e.g. the `offline` just published) and DISCONNECT
  }
  drop();
}

void SimMqtt::kill() {
  const int s = fd();
  if (s >= 0) shutdown(s, SHUT_RDWR);  // the next read sees the connection gone and reports it
}

int SimMqtt::fd() const { return m_ == nullptr ? -1 : mosquitto_socket(m_); }

bool SimMqtt::wantWrite() const { return m_ != nullptr && mosquitto_want_write(m_); }

void SimMqtt::service(short revents) {
  if (m_ == nullptr) return;
  // Callbacks run inside these calls and may make the Board publish; they never destroy m_ (the Board
  // only reconnects from tick(), after this returns).
  if (revents & (POLLIN | POLLHUP | POLLERR)) mosquitto_loop_read(m_, 1);
  if (m_ != nullptr && (revents & POLLOUT)) mosquitto_loop_write(m_, 1);
  if (m_ != nullptr) mosquitto_loop_misc(m_);
}

void SimMqtt::onConnect(mosquitto*, void* self, int rc) {
  auto* s = static_cast<SimMqtt*>(self);
  if (rc == 0) {
    s->connected_ = true;
    if (s->board_ != nullptr) s->board_->onMqttConnected();
  } else if (s->board_ != nullptr) {
    s->board_->onMqttDisconnected();  // refused (bad credentials, ACL): counts as a failed attempt
  }
}

void SimMqtt::onDisconnect(mosquitto*, void* self, int) {
  auto* s = static_cast<SimMqtt*>(self);
  s->connected_ = false;
  if (s->board_ != nullptr) s->board_->onMqttDisconnected();
}

void SimMqtt::onMessage(mosquitto*, void* self, const mosquitto_message* msg) {
  auto* s = static_cast<SimMqtt*>(self);
  if (s->board_ == nullptr || msg == nullptr) return;
  s->board_->onMqttMessage(msg->topic, static_cast<const uint8_t*>(msg->payload), static_cast<size_t>(msg->payloadlen));
}

}  // namespace sim
