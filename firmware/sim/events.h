#pragma once

namespace sim {

// One machine-readable event line on stdout, flushed at once (tests read it through a pipe).
void emit(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace sim
