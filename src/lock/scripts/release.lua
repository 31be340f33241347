-- SPDX-License-Identifier: MIT
-- Release a lock we hold and wake its waiters.
-- KEYS[1]  lock key         PREFIX{NAME}
-- KEYS[2]  release channel  PREFIX{NAME}:released  (a Pub/Sub channel name)
-- ARGV[1]  token
-- Returns 1 when the key held our token and was deleted (and the release was
-- published), 0 when it was not ours (nothing is touched).
-- The fence key is left to expire with its TTL so that the next fence still
-- rises even if the server clock steps back.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then
  return 0
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', KEYS[2], '1')
return 1
