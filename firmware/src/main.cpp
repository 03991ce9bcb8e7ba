// Hearth board firmware: the core (lib/HearthCore) on the ESP32 through ArduinoHal.
// The entity table comes from include/board_profile.h, generated before each build from
// hardware/boards/<profile>.toml by scripts/gen_profile.py (python -m edge.boards header).
#include <Arduino.h>

#include "arduino_hal.h"
#include "board.h"
#include "board_profile.h"

namespace {

hearth::ArduinoHal hal;
hearth::Board board(hal);  // ~10 KB of fixed buffers, static: nothing is allocated while running
char boardId[13];
bool running = false;
uint32_t lastComplaint = 0;
bool ledOn = false;

}  // namespace

void setup() {
  hal.begin();
  hal.boardId(boardId);
  hearth::BoardConfig cfg;
  cfg.boardId = boardId;
  running = board.begin(HEARTH_ENTITY_SPEC, sizeof(HEARTH_ENTITY_SPEC) - 1, cfg);
  if (running) hal.attach(&board);
}

void loop() {
  if (!running) {
    // The profile compiled into this firmware does not parse: say why on the console (the host drops it
    // as a bad frame, a person with a serial monitor reads it) and blink the LED fast. No protocol.
    const uint32_t now = millis();
    if (now - lastComplaint >= 200) {
      lastComplaint = now;
      ledOn = !ledOn;
      pinMode(HEARTH_STATUS_LED_PIN, OUTPUT);
      digitalWrite(HEARTH_STATUS_LED_PIN, ledOn ? HIGH : LOW);
      static uint8_t ticks = 0;
      if (++ticks % 25 == 0) {
        Serial.print("hearth: cannot start: ");
        Serial.println(board.error());
      }
    }
    return;
  }
  hal.poll();
  board.tick(millis());
}
