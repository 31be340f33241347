-- SPDX-License-Identifier: MIT
-- Extend a lock we hold.
-- KEYS[1]  lock key      PREFIX{NAME}
-- KEYS[2]  fence key     PREFIX{NAME}:fence
-- ARGV[1]  token
-- ARGV[2]  ttl           milliseconds
-- Returns 1 when the key held our token and was extended, 0 otherwise (the
-- lock is lost: expired, deleted or taken by someone else).
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then
  return 0
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
