-- SPDX-License-Identifier: MIT
-- Acquire a lock, or tell how long its holder keeps it.
-- KEYS[1]  lock key      PREFIX{NAME}        (string: the holder's token)
-- KEYS[2]  fence key     PREFIX{NAME}:fence  (string: the last fence issued)
-- ARGV[1]  token         128-bit random hex, one per acquisition
-- ARGV[2]  ttl           milliseconds
-- Returns {1, fence}     acquired (or already ours: a retry after a lost
--                        reply gets the same fence back)
--         {0, pttl}      held by another token; pttl = -1 when the key has
--                        no expiry (a foreign or stale key, never touched)
--         {-1, type}     the lock key holds another type (never touched)
-- The fence never goes back, even when Redis lost its data: it is the larger
-- of the stored fence + 1 and the server clock in microseconds.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'string' then
  return {-1, kind}
end
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if current then
  return {0, redis.call('PTTL', KEYS[1])}
end
local now = redis.call('TIME')
local fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if last >= fence then
  fence = last + 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', ARGV[2])
return {1, fence}
