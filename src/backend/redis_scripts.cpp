// SPDX-License-Identifier: MIT
#include "backend/redis_scripts.hpp"

#include "backend/scripts/acquire_lua.hpp"
#include "backend/scripts/refresh_lua.hpp"
#include "backend/scripts/release_lua.hpp"
#include "backend/scripts/status_lua.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>

namespace godislock::backend {

using redis::Reply;
using util::Error;
using util::ErrorKind;
using util::Result;

namespace {

const Script k_acquire{"acquire", scripts::k_acquire_source,
                       scripts::k_acquire_sha1};
const Script k_refresh{"refresh", scripts::k_refresh_source,
                       scripts::k_refresh_sha1};
const Script k_release{"release", scripts::k_release_source,
                       scripts::k_release_sha1};
const Script k_status{"status", scripts::k_status_source,
                      scripts::k_status_sha1};

std::string ms(Millis d) { return std::to_string(d.count()); }

// Thrown by Fields for an element of the wrong type or a missing one;
// caught by decoded(), so that no exception leaves this file.
struct Malformed {
  std::string what;
};

// The elements of an array reply, read with their types checked.
class Fields {
 public:
  Fields(const Reply& r, const char* script, size_t min_size)
      : m_reply(r), m_script(script) {
    if (r.type != Reply::Type::array || r.elements.size() < min_size) {
      throw Malformed{fmt::format("{} script: malformed reply", script)};
    }
  }
  size_t size() const { return m_reply.elements.size(); }
  long long integer(size_t i) const {
    const Reply& e = at(i);
    if (e.type != Reply::Type::integer) {
      throw bad(i, "an integer");
    }
    return e.integer;
  }
  // An integer, or a string holding one (Lua numbers from some calls).
  long long number(size_t i) const {
    const Reply& e = at(i);
    if (e.type == Reply::Type::integer) {
      return e.integer;
    }
    try {
      size_t used = 0;
      long long v = std::stoll(text(i), &used);
      if (used == e.str.size()) {
        return v;
      }
    } catch (const std::exception&) {
    }
    throw bad(i, "a number");
  }
  const std::string& text(size_t i) const {
    const Reply& e = at(i);
    if (e.type != Reply::Type::string && e.type != Reply::Type::status) {
      throw bad(i, "a string");
    }
    return e.str;
  }
  Fields array(size_t i, size_t min_size) const {
    return Fields(at(i), m_script, min_size);
  }

 private:
  const Reply& at(size_t i) const {
    if (i >= size()) {
      throw bad(i, "present");
    }
    return m_reply.elements[i];
  }
  Malformed bad(size_t i, const char* want) const {
    return Malformed{fmt::format("{} script: reply element {} is not {}",
                                 m_script, i + 1, want)};
  }

  const Reply& m_reply;
  const char* m_script;
};

template <typename T, typename F>
Result<T> decoded(F&& decode) {
  try {
    return decode();
  } catch (const Malformed& m) {
    return Error{ErrorKind::protocol, m.what};
  }
}

const char* mode_arg(Backend::Mode mode) {
  switch (mode) {
    case Backend::Mode::race:
      return "race";
    case Backend::Mode::try_:
      return "try";
    case Backend::Mode::queue:
      break;
  }
  return "queue";
}

Attempt held_or_queued(const Fields& e) {
  Attempt a;
  long long ttl = e.integer(1);
  if (ttl == -1) {
    a.state = Outcome::no_expiry;
  } else if (ttl == -2) {
    a.state = Outcome::queued;
    if (e.size() > 2 && e.integer(2) >= 0) {
      a.head_lapses = Millis(e.integer(2));
    }
  } else {
    a.state = Outcome::held;
    a.holder_ttl = Millis(std::max<long long>(ttl, 0));
    if (e.size() >= 7) {
      a.holders = static_cast<unsigned>(e.integer(2));
      a.holder_host = e.text(3);
      a.holder_pid = e.text(4);
      a.holder_cmd = e.text(5);
      if (e.integer(6) >= 0) {
        a.holder_age = Millis(e.integer(6));
      }
    }
  }
  return a;
}

HolderInfo holder_of(const Fields& h) {
  HolderInfo info;
  info.ttl = Millis(std::max<long long>(h.number(0), 0));
  info.who = Holder{h.text(1), h.text(2), h.text(3), h.text(4)};
  if (h.integer(5) >= 0) {
    info.age = Millis(h.integer(5));
  }
  if (h.integer(6) >= 0) {
    info.fence = static_cast<uint64_t>(h.integer(6));
  }
  info.slot = static_cast<unsigned>(std::max<long long>(h.integer(7), 0));
  return info;
}

}  // namespace

ScriptCall acquire_call(const RedisKeys& keys, const Settings& settings,
                        const std::string& token, Millis ttl,
                        Backend::Mode mode, uint64_t* queue_seq, bool sharded) {
  if (mode == Backend::Mode::queue) {
    ++*queue_seq;
  }
  return acquire_call(
      keys, AcquireArgs{token, ttl, mode, settings.limit, settings.shared,
                        &settings.holder, *queue_seq, sharded});
}

ScriptCall acquire_call(const RedisKeys& keys, const AcquireArgs& a) {
  const Holder& h = *a.holder;
  ScriptCall call{&k_acquire,
                  {keys.lock, keys.fence, keys.queue},
                  {a.token, ms(a.ttl), mode_arg(a.mode), ms(k_queue_lease),
                   std::to_string(a.limit), a.shared ? "1" : "0", h.host, h.pid,
                   h.user, h.command.substr(0, k_holder_cmd_cap),
                   ms(k_queue_grace), std::to_string(a.seq)}};
  if (a.sharded) {
    call.args.emplace_back("sharded");
  }
  return call;
}

Result<Attempt> decode_acquire(const Reply& r, const RedisKeys& keys) {
  return decoded<Attempt>([&]() -> Attempt {
    Fields e(r, "acquire", 2);
    Attempt a;
    switch (e.integer(0)) {
      case 1:
        a.state = Outcome::acquired;
        a.fence = static_cast<uint64_t>(e.integer(1));
        a.slot = e.size() > 2 ? static_cast<unsigned>(e.integer(2)) : 0;
        return a;
      case 0:
        return held_or_queued(e);
      case -3:
        a.state = Outcome::mismatch;
        a.detail = e.text(1);
        return a;
      default:
        a.state = Outcome::wrong_type;
        a.detail = e.text(1);
        a.detail_key = e.size() > 2 ? e.text(2) : keys.lock;
        return a;
    }
  });
}

ScriptCall refresh_call(const RedisKeys& keys, const std::string& token,
                        Millis ttl, unsigned limit, bool shared) {
  return {&k_refresh,
          {keys.lock, keys.fence},
          {token, ms(ttl), std::to_string(limit), shared ? "1" : "0"}};
}

ScriptCall release_call(const RedisKeys& keys, const std::string& token,
                        unsigned limit, bool shared, bool sharded) {
  ScriptCall call{
      &k_release,
      {keys.lock, keys.channel, keys.queue},
      {token, std::to_string(limit), shared ? "1" : "0", ms(k_queue_grace)}};
  if (sharded) {
    call.args.emplace_back("sharded");
  }
  return call;
}

Result<bool> decode_token_check(const Reply& r, const char* script) {
  if (r.type == Reply::Type::integer) {
    return r.integer == 1;
  }
  return decoded<bool>([&]() -> Result<bool> {
    Fields e(r, script, 3);
    if (e.integer(0) != -1) {
      throw Malformed{fmt::format("{} script: malformed reply", script)};
    }
    return Error{
        ErrorKind::foreign,
        fmt::format("key '{}' holds a {}, not a lock", e.text(2), e.text(1))};
  });
}

ScriptCall status_call(const RedisKeys& keys, const char* what, bool sharded) {
  ScriptCall call{&k_status,
                  {keys.lock, keys.fence, keys.queue, keys.channel},
                  {what, ms(k_queue_grace)}};
  if (sharded) {
    call.args.emplace_back("sharded");
  }
  return call;
}

Result<LockStatus> decode_status(const Reply& r) {
  return decoded<LockStatus>([&]() -> LockStatus {
    Fields e(r, "status", 1);
    LockStatus st;
    const std::string& kind = e.text(0);
    if (kind == "foreign") {
      st.kind = LockStatus::Kind::foreign;
      st.foreign_detail = e.text(1);
      st.foreign_key = e.text(2);
      return st;
    }
    Fields all(r, "status", 4);
    st.kind = kind == "exclusive" ? LockStatus::Kind::exclusive
              : kind == "limit"   ? LockStatus::Kind::counted
              : kind == "shared"  ? LockStatus::Kind::shared
                                  : LockStatus::Kind::free;
    st.limit = static_cast<unsigned>(std::max<long long>(all.integer(1), 1));
    st.last_fence =
        static_cast<uint64_t>(std::max<long long>(all.integer(2), 0));
    st.queued = static_cast<unsigned>(std::max<long long>(all.integer(3), 0));
    for (size_t i = 4; i < all.size(); ++i) {
      st.holders.push_back(holder_of(all.array(i, 8)));
    }
    return st;
  });
}

namespace {

// The words of the Lua string `local NAME = '...' .. '...'` in `source`.
std::vector<std::string> lua_words(std::string_view source,
                                   std::string_view name) {
  std::vector<std::string> words;
  std::string head = fmt::format("local {} = ", name);
  size_t at = source.find(head);
  if (at == std::string_view::npos) {
    return words;
  }
  std::string_view rest = source.substr(at + head.size());
  std::string text;
  // Quoted pieces joined by "..", up to the first line that ends without
  // one.
  for (;;) {
    size_t open = rest.find('\'');
    size_t close = open == std::string_view::npos ? std::string_view::npos
                                                  : rest.find('\'', open + 1);
    if (close == std::string_view::npos) {
      break;
    }
    text.append(rest.substr(open + 1, close - open - 1));
    rest.remove_prefix(close + 1);
    size_t eol = rest.find('\n');
    if (rest.substr(0, eol).find("..") == std::string_view::npos) {
      break;
    }
  }
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) {
      j = text.size();
    }
    if (j > i) {
      words.emplace_back(text.substr(i, j - i));
    }
    i = j + 1;
  }
  return words;
}

}  // namespace

std::string glob_literal(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

std::optional<std::string> acl_rule(const std::string& prefix, bool read_only,
                                    std::string* why) {
  for (char c : prefix) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      *why =
          "an ACL rule cannot hold a prefix with blanks or control "
          "characters";
      return std::nullopt;
    }
  }
  std::vector<std::string> rights =
      lua_words(k_status.source, read_only ? "k_read_rights" : "k_rights");
  std::string glob = glob_literal(prefix) + "*";
  std::string rule = "reset on ~" + glob;
  if (!read_only) {
    rule += " &" + glob;
  }
  for (const std::string& right : rights) {
    rule += " +" + right;
  }
  return rule;
}

std::vector<std::string> evalsha_argv(const ScriptCall& call) {
  std::vector<std::string> argv;
  argv.reserve(3 + call.keys.size() + call.args.size());
  argv.emplace_back("EVALSHA");
  argv.emplace_back(call.script->sha1);
  argv.push_back(std::to_string(call.keys.size()));
  argv.insert(argv.end(), call.keys.begin(), call.keys.end());
  argv.insert(argv.end(), call.args.begin(), call.args.end());
  return argv;
}

void evalsha_to_eval(std::vector<std::string>& argv, const Script& script) {
  GODISLOCK_DEBUG("{} script not cached on the server; sending it",
                  script.name);
  argv[0] = "EVAL";
  argv[1] = script.source;
}

bool is_noscript(const Reply& r) {
  return r.is_error() && r.str.rfind("NOSCRIPT", 0) == 0;
}

Error script_error(const Script& script, std::string text) {
  // Before AUTH, Redis refuses requests of more than a few words with a
  // protocol error instead of NOAUTH (and closes the connection).
  if (text.find("Protocol error: unauthenticated") != std::string::npos) {
    text = "NOAUTH Authentication required.";
  }
  return server_error(std::string(script.name) + " script", text);
}

}  // namespace godislock::backend
