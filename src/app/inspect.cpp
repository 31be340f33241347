// SPDX-License-Identifier: MIT
// `godislock status [NAME...]` and `godislock release --force NAME`: look at
// locks, and break one.
#include "app/common.hpp"
#include "app/exit_code.hpp"
#include "backend/backend.hpp"
#include "config/duration.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace godislock::app {

namespace {

using backend::HolderInfo;
using backend::LockStatus;
using util::Deadline;
using Millis = std::chrono::milliseconds;

// 1 (exit status): the lock is free.
constexpr int k_exit_free = 1;

// --- JSON ---

using Json = nlohmann::ordered_json;

// `text` with every byte that is not part of well-formed UTF-8 replaced by
// U+FFFD (one per byte), so that the output always parses.
std::string valid_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // A well-formed multi-byte sequence is copied; anything else is one
    // replacement character per byte.
    size_t len = c >= 0xF0 && c <= 0xF4   ? 4
                 : c >= 0xE0              ? 3
                 : c >= 0xC2 && c <= 0xDF ? 2
                                          : 0;
    bool ok = len != 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (ok && len == 3) {
      auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && len == 4) {
      auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(text, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// A decimal string as a JSON number, or null.
Json json_number_or_null(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return nullptr;
  }
  return std::stoll(text);
}

const char* kind_name(LockStatus::Kind kind) {
  switch (kind) {
    case LockStatus::Kind::exclusive:
      return "exclusive";
    case LockStatus::Kind::counted:
      return "counted";
    case LockStatus::Kind::shared:
      return "shared";
    case LockStatus::Kind::free:
    case LockStatus::Kind::foreign:
      break;
  }
  return "";
}

// One lock as a JSON object (schema in godislock(1), STATUS).
std::string json_lock(const std::string& name, const LockStatus& st) {
  bool held = !st.holders.empty();
  Json lock;
  lock["name"] = valid_utf8(name);
  lock["state"] = st.kind == LockStatus::Kind::foreign ? "foreign"
                  : held                               ? "held"
                                                       : "free";
  lock["kind"] = held ? Json(kind_name(st.kind)) : Json(nullptr);
  lock["limit"] = st.limit;
  lock["queued"] = st.queued;
  lock["last_fence"] = st.last_fence != 0 ? Json(st.last_fence) : Json(nullptr);
  Json holders = Json::array();
  for (const HolderInfo& h : st.holders) {
    Json j;
    j["host"] = valid_utf8(h.who.host);
    j["pid"] = json_number_or_null(h.who.pid);
    j["user"] = valid_utf8(h.who.user);
    j["command"] = valid_utf8(h.who.command);
    j["held_ms"] = h.age ? Json(h.age->count()) : Json(nullptr);
    j["ttl_ms"] = h.ttl.count();
    j["fence"] = h.fence ? Json(*h.fence) : Json(nullptr);
    j["slot"] = h.slot;
    holders.push_back(std::move(j));
  }
  lock["holders"] = std::move(holders);
  if (st.kind == LockStatus::Kind::foreign) {
    lock["foreign"] = {{"key", valid_utf8(st.foreign_key)},
                       {"problem", valid_utf8(st.foreign_detail)}};
  }
  // Every string went through valid_utf8(), so strict never throws.
  return lock.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

// --- Text ---

// "web-1:4242 alice, for 12s, ttl 24s, fence 17957..., slot 1: ./deploy.sh"
std::string text_holder(const HolderInfo& h, LockStatus::Kind kind) {
  std::string who = h.who.host.empty() && h.who.pid.empty()
                        ? "(unknown holder)"
                        : fmt::format("{}:{}", h.who.host, h.who.pid);
  if (!h.who.user.empty()) {
    who += " " + h.who.user;
  }
  if (h.age) {
    who += ", for " + whole_seconds(*h.age);
  }
  who += ", ttl " + whole_seconds(h.ttl);
  if (h.fence) {
    who += fmt::format(", fence {}", *h.fence);
  }
  if (kind == LockStatus::Kind::counted) {
    who += fmt::format(", slot {}", h.slot);
  }
  if (!h.who.command.empty()) {
    who += ": " + h.who.command;
  }
  return who;
}

std::string text_lock(const std::string& name, const LockStatus& st) {
  std::string out;
  if (st.kind == LockStatus::Kind::foreign) {
    return fmt::format(
        "lock '{}': key '{}' was not made by godislock ({}); left alone\n",
        name, st.foreign_key,
        st.foreign_detail == "no-ttl" ? "it has no TTL"
                                      : "it holds a " + st.foreign_detail);
  }
  std::string queued =
      st.queued != 0 ? fmt::format(", {} queued", st.queued) : "";
  if (st.holders.empty()) {
    return fmt::format("lock '{}': free{}\n", name, queued);
  }
  std::string kind =
      st.kind == LockStatus::Kind::counted
          ? fmt::format("counted, {} of {} places", st.holders.size(), st.limit)
      : st.kind == LockStatus::Kind::shared
          ? fmt::format("shared, {} holder{}", st.holders.size(),
                        st.holders.size() > 1 ? "s" : "")
          : "exclusive";
  out = fmt::format("lock '{}': held ({}){}\n", name, kind, queued);
  for (const HolderInfo& h : st.holders) {
    out += "  " + text_holder(h, st.kind) + "\n";
  }
  return out;
}

// Control characters from the server must not forge lines or move the
// cursor on the user's terminal.
std::string printable(std::string text) {
  for (char& c : text) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\n') || c == 0x7f) {
      c = '?';
    }
  }
  return text;
}

void print(const std::string& text) {
  if (!util::write_all(STDOUT_FILENO, text.data(), text.size())) {
    throw Fatal{k_exit_internal,
                fmt::format("cannot write to standard output: {}",
                            std::strerror(errno))};
  }
}

std::unique_ptr<backend::Backend> open_backend(const cli::ConnectionOptions& o,
                                               const std::string& name) {
  backend::Settings settings;
  settings.endpoint = endpoint_for(o);
  settings.prefix = o.prefix;
  settings.name = name;
  auto b = backend::open(settings, Deadline::after(o.connect_timeout));
  if (!b) {
    throw Fatal{exit_code_for_error(b.error()), b.error().message};
  }
  return std::move(b.value());
}

}  // namespace

int status_command(const cli::StatusOptions& o) {
  check_prefix(o.prefix);
  for (const auto& name : o.names) {
    check_name(name);
  }
  auto b = open_backend(o, o.names.empty() ? "" : o.names.front());
  std::vector<std::string> names = o.names;
  bool listing = names.empty();
  if (listing) {
    auto found = b->list_names(Deadline::after(o.connect_timeout));
    if (!found) {
      throw Fatal{exit_code_for_error(found.error()), found.error().message};
    }
    names = *found;
  }

  std::string out = o.json ? "[" : "";
  int held = 0, free = 0, foreign = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    auto st = b->status(names[i], Deadline::after(o.connect_timeout));
    if (!st) {
      throw Fatal{exit_code_for_error(st.error()),
                  fmt::format("lock '{}': {}", names[i], st.error().message)};
    }
    if (st->kind == LockStatus::Kind::foreign) {
      ++foreign;
    } else if (st->holders.empty()) {
      ++free;
    } else {
      ++held;
    }
    if (o.json) {
      out += (i == 0 ? "" : ",") + json_lock(names[i], *st);
    } else {
      out += printable(text_lock(names[i], *st));
    }
  }
  if (o.json) {
    out += "]\n";
  } else if (listing && names.empty()) {
    out = fmt::format("no locks under prefix '{}'\n", o.prefix);
  }
  print(out);
  if (listing) {
    return held > 0 ? 0 : k_exit_free;
  }
  return foreign > 0 ? static_cast<int>(k_exit_foreign_key)
         : free > 0  ? k_exit_free
                     : 0;
}

int release_command(const cli::ReleaseOptions& o) {
  check_name(o.name);
  check_prefix(o.prefix);
  auto b = open_backend(o, o.name);
  auto st = b->break_lock(Deadline::after(o.connect_timeout));
  if (!st) {
    throw Fatal{exit_code_for_error(st.error()), st.error().message};
  }
  if (st->kind == LockStatus::Kind::foreign) {
    std::string text = printable(text_lock(o.name, *st));
    text.pop_back();  // the newline: errors are printed as one line
    throw Fatal{k_exit_foreign_key, text};
  }
  if (st->holders.empty()) {
    print(fmt::format("lock '{}' was free; nothing released\n", o.name));
    return k_exit_free;
  }
  std::string out = fmt::format("released lock '{}', held by:\n", o.name);
  for (const HolderInfo& h : st->holders) {
    out += "  " + text_holder(h, st->kind) + "\n";
  }
  print(printable(out));
  return 0;
}

}  // namespace godislock::app
