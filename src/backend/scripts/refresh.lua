-- SPDX-License-Identifier: MIT
-- Extend a hold of ours (see acquire.lua for the keys).
-- KEYS[1]  lock key      PREFIX{NAME}
-- KEYS[2]  fence key     PREFIX{NAME}:fence
-- ARGV[1]  token
-- ARGV[2]  ttl           milliseconds
-- ARGV[3]  limit         as for acquire
-- ARGV[4]  shared        as for acquire
-- Returns 1 when our hold was still there and was extended, 0 otherwise (it
-- is lost: expired, deleted or taken by someone else; a slot or readers key
-- of another type holds no hold of ours either, and is not touched), or
-- {-1, type, key} when a key beside the hold (holder record, fence, limit)
-- holds another type: nothing is extended, the hold lapses with its TTL.
-- Not on a hot path: plain TYPEs.
local lock, token, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
local limit, shared = tonumber(ARGV[3]), ARGV[4] == '1'
local holder_key = lock .. ':holder:' .. token
local lacking = lacking_rights(k_rights, lock, lock .. ':released')
if lacking then
  return lacking
end
-- The keys every extension writes besides the hold itself, checked first.
local function check_common(more)
  return first_alien({{holder_key, 'hash'}, {KEYS[2], 'string'}, more})
end
local function extend_common()
  redis.call('PEXPIRE', holder_key, ttl)
  extend(KEYS[2], ttl)
end
if shared then
  local readers = lock .. ':readers'
  if redis.call('TYPE', readers)['ok'] ~= 'zset' then
    return 0
  end
  local t = redis.call('TIME')
  local now = ms_of(t)
  local expiry = redis.call('ZSCORE', readers, token)
  if not expiry then
    return 0
  end
  if tonumber(expiry) <= now then
    redis.call('ZREM', readers, token)
    return 0
  end
  local bad = check_common({readers, 'zset'})
  if bad then
    return bad
  end
  redis.call('ZADD', readers, now + ttl, token)
  extend(readers, ttl)
  extend_common()
  return 1
end
for k = 1, limit do
  local key = slot_key(lock, k)
  -- pcall: a slot of another type is not ours (and is not touched).
  local holder = redis.pcall('GET', key)
  if holder == token then
    local bad = check_common(
        limit > 1 and {lock .. ':limit', 'string'} or {key, 'string'})
    if bad then
      return bad
    end
    redis.call('PEXPIRE', key, ttl)
    if limit > 1 then
      extend(lock .. ':limit', ttl)
    end
    extend_common()
    return 1
  end
end
return 0
