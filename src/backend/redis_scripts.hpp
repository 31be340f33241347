// SPDX-License-Identifier: MIT
#pragma once

// The protocol of the Redis backend in one place: for each Lua script
// (scripts/*.lua) the keys and arguments it is called with, in the order it
// reads them, and its reply, decoded with every element's type checked. A
// reply that is not what the script returns is a protocol error naming the
// script and the element.

#include "backend/backend.hpp"
#include "backend/redis_backend.hpp"
#include "redis/resp.hpp"
#include "util/result.hpp"

#include <optional>
#include <string>
#include <vector>

namespace godislock::backend {

struct Script {
  const char* name;
  const char* source;
  const char* sha1;
};

// EVALSHA's keys and arguments for one call of a script.
struct ScriptCall {
  const Script* script;
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

// EVALSHA's words for `call`; evalsha_to_eval turns them into EVAL's, for
// a server that does not have the script cached (SCRIPT FLUSH, a restart,
// a failover: Redis 7 does not replicate SCRIPT LOAD).
std::vector<std::string> evalsha_argv(const ScriptCall& call);
void evalsha_to_eval(std::vector<std::string>& argv, const Script& script);
bool is_noscript(const redis::Reply& r);
// A script's error reply as an Error.
util::Error script_error(const Script& script, std::string text);

// acquire.lua: KEYS lock, fence, queue; ARGV token, ttl ms, mode, queue
// lease ms, limit, shared, host, pid, user, cmd, grace ms, seq[,
// 'sharded'].
struct AcquireArgs {
  std::string token;
  Millis ttl;
  Backend::Mode mode;
  unsigned limit;
  bool shared;
  const Holder* holder;
  uint64_t seq;  // the number of this queue registration
  // Waiters listen on shard channels (a Redis Cluster): the script
  // SPUBLISHes (ARGV[13] 'sharded').
  bool sharded = false;
};
ScriptCall acquire_call(const RedisKeys& keys, const AcquireArgs& a);
// The same for an attempt on `settings`' lock; a queue-mode attempt takes
// the next number of `*queue_seq` (the backend's count of them).
ScriptCall acquire_call(const RedisKeys& keys, const Settings& settings,
                        const std::string& token, Millis ttl,
                        Backend::Mode mode, uint64_t* queue_seq,
                        bool sharded = false);
// {1, fence, slot} | {0, -1} | {0, -2, head_lapses} | {0, ttl, holders,
// host, pid, cmd, age} | {-3, shape} | {-1|other, type, key}.
util::Result<Attempt> decode_acquire(const redis::Reply& r,
                                     const RedisKeys& keys);

// refresh.lua: KEYS lock, fence; ARGV token, ttl ms, limit, shared.
ScriptCall refresh_call(const RedisKeys& keys, const std::string& token,
                        Millis ttl, unsigned limit, bool shared);
// release.lua: KEYS lock, release channel, queue; ARGV token, limit,
// shared, grace ms[, 'sharded'].
ScriptCall release_call(const RedisKeys& keys, const std::string& token,
                        unsigned limit, bool shared, bool sharded = false);
// Refresh and release: 1 (ours, done), 0 (not ours), or {-1, type, key}
// (a key of the lock is foreign: ErrorKind::foreign, nothing written).
util::Result<bool> decode_token_check(const redis::Reply& r,
                                      const char* script);

// status.lua: KEYS lock, fence, queue, release channel; ARGV 'look' or
// 'break', grace ms[, 'sharded'].
ScriptCall status_call(const RedisKeys& keys, const char* what,
                       bool sharded = false);
// {kind, limit, last fence, queued, {ttl, host, pid, user, cmd, age, fence,
// slot}...} | {'foreign', detail, key}.
util::Result<LockStatus> decode_status(const redis::Reply& r);

// A Redis glob (SCAN's MATCH, an ACL key or channel pattern) that matches
// `text` literally.
std::string glob_literal(const std::string& text);

// The least-privilege Redis ACL rule for godislock's keys under `prefix`:
// the words to give `ACL SETUSER user` (before a password), from
// "reset on". With `read_only`, only what `status` needs to look. The
// rights are the scripts' own list (scripts/prelude.lua), which each
// script checks before writing anything. Nullopt (and *why set) for a
// prefix no ACL rule can hold (blanks or control characters).
std::optional<std::string> acl_rule(const std::string& prefix, bool read_only,
                                    std::string* why);

}  // namespace godislock::backend
