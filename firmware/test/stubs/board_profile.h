// Stand-in for the generated firmware/include/board_profile.h (python -m edge.boards header).
#pragma once

#define HEARTH_PROFILE "relay-board"
#define HEARTH_CHIP "esp32"
#define HEARTH_STATUS_LED_PIN 2
#define HEARTH_ENTITY_COUNT 1

static const char HEARTH_ENTITY_SPEC[] =
    "profile=relay-board\n"
    "status_led=2\n"
    "id=kitchen_light;kind=switch;name=Kitchen light;area=kitchen;unit=;min=0;max=1;pin=26;drv=gpio;sens=0;ptt=0;inv=1\n";
