// SPDX-License-Identifier: MIT
#pragma once

#include "net/resolve.hpp"
#include "util/deadline.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

#include <vector>

namespace godislock::net {

// Connects a non-blocking, close-on-exec stream socket (TCP_NODELAY for
// TCP) to the first of `addresses` that accepts, trying them in order, and
// returns by `deadline`. An address that does not answer gets its share of
// the time left (at least 2 s when there is that much), so that one
// black-holed address does not use up the time of the ones after it.
// Errors: timeout (no address answered in time), io (each refused or
// failed; with several addresses the message names each one and its
// error).
util::Result<util::Fd> connect(const std::vector<Address>& addresses,
                               util::Deadline deadline);

}  // namespace godislock::net
