#include "pty_link.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

namespace sim {

namespace {
constexpr size_t kPendingMax = 4096;
}

bool PtyLink::open(const std::string& linkPath, std::string* err) {
  close();
  const int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
    *err = std::string("cannot create a pseudo-terminal: ") + strerror(errno);
    if (m >= 0) ::close(m);
    return false;
  }
  const char* slaveName = ptsname(m);
  if (slaveName == nullptr) {
    *err = "ptsname failed";
    ::close(m);
    return false;
  }
  const std::string slave = slaveName;
  // Raw mode, set through the slave: without it the line discipline would echo the host's frames back to
  // the host and turn \n into \r\n. The settings stay with the pty while the master is open.
  const int s = ::open(slave.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK);
  if (s < 0) {
    *err = "cannot open " + slave + ": " + strerror(errno);
    ::close(m);
    return false;
  }
  termios t{};
  tcgetattr(s, &t);
  cfmakeraw(&t);
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  tcsetattr(s, TCSANOW, &t);
  ::close(s);
  fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);

  struct stat st {};
  if (lstat(linkPath.c_str(), &st) == 0) {
    if (!S_ISLNK(st.st_mode)) {
      *err = linkPath + " exists and is not a symlink: refusing to replace it";
      ::close(m);
      return false;
    }
    unlink(linkPath.c_str());
  }
  if (symlink(slave.c_str(), linkPath.c_str()) != 0) {
    *err = "cannot create the symlink " + linkPath + ": " + strerror(errno);
    ::close(m);
    return false;
  }
  master_ = m;
  link_ = linkPath;
  attached_ = everAttached_ = false;
  pending_.clear();
  return true;
}

void PtyLink::close() {
  if (master_ < 0) return;
  ::close(master_);
  master_ = -1;
  attached_ = false;
  pending_.clear();
  // Only remove our own symlink (someone may have replaced it meanwhile).
  char target[256];
  const ssize_t n = readlink(link_.c_str(), target, sizeof(target) - 1);
  if (n > 0) unlink(link_.c_str());
}

void PtyLink::setAttached(bool a) {
  if (a == attached_) return;
  attached_ = a;
  if (a) {
    everAttached_ = true;
    if (!pending_.empty()) {
      std::vector<uint8_t> p;
      p.swap(pending_);
      writeNow(p.data(), p.size());
    }
  }
}

size_t PtyLink::read(uint8_t* buf, size_t cap) {
  if (master_ < 0) return 0;
  const ssize_t n = ::read(master_, buf, cap);
  if (n > 0) {
    setAttached(true);
    return static_cast<size_t>(n);
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    setAttached(true);  // the slave is open, just nothing to read
  } else if (n < 0 && errno == EIO) {
    setAttached(false);  // nobody has the port open
  }
  return 0;
}

void PtyLink::write(const uint8_t* data, size_t len) {
  if (master_ < 0) return;
  if (!attached_) {
    if (!everAttached_ && pending_.size() + len <= kPendingMax) pending_.insert(pending_.end(), data, data + len);
    return;
  }
  writeNow(data, len);
}

void PtyLink::writeNow(const uint8_t* data, size_t len) {
  // A full pty buffer (host not reading) drops the rest: the framing recovers at the next 0x00.
  size_t off = 0;
  while (off < len) {
    const ssize_t n = ::write(master_, data + off, len - off);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace sim
