#pragma once

// Reported as hello.fw. PlatformIO builds may override it with -DHEARTH_FW_VERSION=\"x.y.z\".
#ifndef HEARTH_FW_VERSION
#define HEARTH_FW_VERSION "0.1.0"
#endif

namespace hearth {
constexpr const char* kFirmwareVersion = HEARTH_FW_VERSION;
}
