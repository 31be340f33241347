// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace godislock::util {

// --- Interface ---

// What went wrong with an expected failure (I/O, server replies, timeouts).
enum class ErrorKind {
  timeout,
  io,
  protocol,
  server,
  auth,
  busy,
  config,       // the server refused a setting (SELECT of a bad db)
  interrupted,  // a signal arrived while waiting
  foreign,      // a key holds a type godislock never gives it; left alone
};

struct Error {
  ErrorKind kind;
  std::string message;
};

// A value or an Error; a tiny stand-in for std::expected (C++23).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_v(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : m_v(std::move(error)) {}  // NOLINT

  bool ok() const { return m_v.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(m_v); }
  const T& value() const { return std::get<0>(m_v); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Error& error() const { return std::get<1>(m_v); }

 private:
  std::variant<T, Error> m_v;
};

// Result of an operation that yields nothing but may fail.
struct Unit {};
using Status = Result<Unit>;

inline Status ok_status() { return Unit{}; }

// Returns early with the error of a failed Result expression.
#define GODISLOCK_TRY(expr)            \
  do {                                 \
    auto godislock_try_r_ = (expr);    \
    if (!godislock_try_r_.ok()) {      \
      return godislock_try_r_.error(); \
    }                                  \
  } while (false)

}  // namespace godislock::util
