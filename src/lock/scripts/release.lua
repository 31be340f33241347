-- SPDX-License-Identifier: MIT
-- Release a lock we hold and wake who goes next; also leave the queue.
-- KEYS[1]  lock key         PREFIX{NAME}
-- KEYS[2]  release channel  PREFIX{NAME}:released  (--no-fair waiters)
-- KEYS[3]  queue key        PREFIX{NAME}:queue
-- ARGV[1]  token
-- Returns 1 when the key held our token and was deleted (and the next
-- waiter was woken), 0 when it was not ours (the lock is not touched).
-- Either way our token leaves the queue (a waiter giving up calls this).
-- Only the first live queued waiter is woken, on its own channel
-- KEYS[1]..':wake:'..TOKEN: a handoff costs the same with 1 or 500 waiters.
-- Waiters that died are dropped on the way. The fence key is left to expire
-- with its TTL so that the next fence still rises if the clock steps back.
local lock, token = KEYS[1], ARGV[1]
redis.call('LREM', KEYS[3], 1, token)
redis.call('DEL', lock .. ':waiter:' .. token)
local kind = redis.call('TYPE', lock)['ok']
local ours = kind == 'string' and redis.call('GET', lock) == token
if not ours and kind ~= 'none' then
  return 0
end
-- The lock is free (or about to be): wake who goes next. Wake before
-- deleting: a failed PUBLISH (ACL) then leaves the lock as it was, and
-- nobody can act on either before this script has finished. When it was
-- not ours (deleted or expired behind our back), the queue still needs
-- the kick: its first waiter may sleep on a long timer.
redis.call('PUBLISH', KEYS[2], '1')
for _ = 1, 100 do
  local first = redis.call('LINDEX', KEYS[3], 0)
  if not first then
    break
  end
  if redis.call('EXISTS', lock .. ':waiter:' .. first) == 1 and
      redis.call('PUBLISH', lock .. ':wake:' .. first, '1') > 0 then
    break
  end
  redis.call('LPOP', KEYS[3])
  redis.call('DEL', lock .. ':waiter:' .. first)
end
if not ours then
  return 0
end
redis.call('DEL', lock)
return 1
