// SPDX-License-Identifier: MIT
#include "support/backend_fixture.hpp"

#include "backend/redis_backend.hpp"
#include "support/time.hpp"
#include "util/deadline.hpp"

#include <climits>
#include <cstdlib>
#include <thread>

namespace godislock::test {

using namespace std::chrono_literals;

void BackendTest::SetUp() { GODISLOCK_REQUIRE_SERVER(server); }

backend::Settings BackendTest::settings(const std::string& name) const {
  backend::Settings s;
  s.endpoint = server.endpoint();
  s.prefix = "t:";
  s.name = name;
  return s;
}

std::unique_ptr<backend::Backend> BackendTest::open(
    const backend::Settings& s) const {
  auto b = backend::open_redis(s, soon());
  EXPECT_TRUE(b) << b.error().message;
  return b ? std::move(b.value()) : nullptr;
}

std::unique_ptr<backend::Backend> BackendTest::open() const {
  return open(settings());
}

std::unique_ptr<backend::Backend> BackendTest::hold(
    const std::string& token, std::chrono::milliseconds ttl) const {
  auto b = open();
  if (b == nullptr) {
    return nullptr;
  }
  auto a = b->acquire(token, ttl, backend::Backend::Mode::race, soon());
  if (!a) {
    ADD_FAILURE() << "taking the lock: " << a.error().message;
    return nullptr;
  }
  if (a->state != backend::Outcome::acquired) {
    ADD_FAILURE() << "the lock is not free";
    return nullptr;
  }
  return b;
}

long long as_integer(const std::string& flat) {
  static const std::string k_tag = "(integer) ";
  if (flat.rfind(k_tag, 0) != 0) {
    return LLONG_MIN;
  }
  return std::stoll(flat.substr(k_tag.size()));
}

long long calls_of(const std::string& info, const std::string& command) {
  std::string field = "cmdstat_" + command + ":calls=";
  auto at = info.find(field);
  return at == std::string::npos ? 0
                                 : std::stoll(info.substr(at + field.size()));
}

long long info_field(const RedisServer& server, const std::string& section,
                     const std::string& field) {
  std::string info = server.cli({"INFO", section});
  std::string tag = field + ":";
  for (size_t at = info.find(tag); at != std::string::npos;
       at = info.find(tag, at + 1)) {
    if (at == 0 || info[at - 1] == '\n') {
      return std::stoll(info.substr(at + tag.size()));
    }
  }
  return -1;
}

long long subscribers(const RedisServer& server, const std::string& channel) {
  // "CHANNEL\n(integer) N"
  std::string flat = server.cli({"PUBSUB", "NUMSUB", channel});
  auto nl = flat.rfind('\n');
  long long n =
      nl == std::string::npos ? LLONG_MIN : as_integer(flat.substr(nl + 1));
  return n == LLONG_MIN ? -1 : n;
}

bool wait_until(const std::function<bool()>& done,
                std::chrono::milliseconds limit) {
  auto end = util::Clock::now() + limit;
  while (util::Clock::now() < end) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

}  // namespace godislock::test
