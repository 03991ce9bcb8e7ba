#pragma once
#include <cstddef>

class Preferences {
 public:
  bool begin(const char* name, bool readOnly = false, const char* partition_label = nullptr);
  bool isKey(const char* key);
  bool remove(const char* key);
  size_t putString(const char* key, const char* value);
  size_t getString(const char* key, char* value, size_t maxLen);
};
