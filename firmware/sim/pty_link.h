#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sim {

// The board's USB serial port: a pseudo-terminal in raw mode with a stable symlink, so the host opens the
// same path every time (like /dev/serial/by-id/...). Non-blocking throughout.
//
// Host attachment is tracked because a pty master reports POLLHUP/EIO while no one has the slave open:
// polling it then would spin. While detached the master is probed with read() instead of polled.
// Output written before the host first attaches (boot text, the boot hello) is kept, up to 4 KB, and
// delivered when it attaches, as a USB bridge's buffer would; later output with no host is dropped.
class PtyLink {
 public:
  ~PtyLink() { close(); }
  bool open(const std::string& linkPath, std::string* err);
  void close();  // the host sees the port vanish; the symlink is removed
  bool isOpen() const { return master_ >= 0; }
  int fd() const { return master_; }
  bool attached() const { return attached_; }
  const std::string& linkPath() const { return link_; }

  // Reads available bytes (0 if none). Also detects the host opening/closing the port.
  size_t read(uint8_t* buf, size_t cap);
  void write(const uint8_t* data, size_t len);

 private:
  void setAttached(bool a);
  void writeNow(const uint8_t* data, size_t len);

  int master_ = -1;
  bool attached_ = false;
  bool everAttached_ = false;
  std::string link_;
  std::vector<uint8_t> pending_;
};

}  // namespace sim
