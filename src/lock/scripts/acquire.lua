-- SPDX-License-Identifier: MIT
-- Acquire a lock, or tell how long to wait before trying again.
-- KEYS[1]  lock key      PREFIX{NAME}        (string: the holder's token)
-- KEYS[2]  fence key     PREFIX{NAME}:fence  (string: the last fence issued)
-- KEYS[3]  queue key     PREFIX{NAME}:queue  (list of waiting tokens, FIFO)
-- ARGV[1]  token         128-bit random hex, one per acquisition
-- ARGV[2]  ttl           milliseconds
-- ARGV[3]  mode          'race': ignore the queue (--no-fair)
--                        'try':  fair, but do not join the queue (first try)
--                        'queue': fair, join the queue (or stay in it)
-- ARGV[4]  lease         milliseconds a queued waiter stays queued without
--                        coming back (fallback liveness for a vanished host)
-- Per-waiter keys beside the lock (same hash tag): KEYS[1]..':waiter:'..TOKEN
-- (the waiter's lease) and the channel KEYS[1]..':wake:'..TOKEN (the waiter
-- is alive while it is subscribed there; release wakes it there).
-- Announces each acquisition on the channel KEYS[1]..':acquired'.
-- Returns {1, fence}     acquired (or already ours: a retry after a lost
--                        reply gets the same fence back)
--         {0, pttl}      not now; pttl = the holder's time left, -2 when the
--                        lock is free but an earlier waiter goes first, -1
--                        when the key has no expiry (foreign or stale: never
--                        touched)
--         {-1, type}     the lock key holds another type (never touched)
-- The fence never goes back, even when Redis lost its data: it is the larger
-- of the stored fence + 1 and the server clock in microseconds.
local lock, token, mode = KEYS[1], ARGV[1], ARGV[3]
local kind = redis.call('TYPE', lock)['ok']
if kind ~= 'none' and kind ~= 'string' then
  return {-1, kind}
end
local function leave_queue()
  if mode ~= 'race' then
    redis.call('LREM', KEYS[3], 1, token)
    redis.call('DEL', lock .. ':waiter:' .. token)
  end
end
local current = redis.call('GET', lock)
if current == token then
  redis.call('PEXPIRE', lock, ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  leave_queue()
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
-- In fair modes the first live waiter goes first. Waiters whose process
-- died (subscription gone) or vanished (lease expired) are dropped here.
local first = false
if mode ~= 'race' then
  for _ = 1, 100 do
    first = redis.call('LINDEX', KEYS[3], 0)
    if not first or first == token then
      break
    end
    local alive = redis.call('EXISTS', lock .. ':waiter:' .. first) == 1 and
        redis.call('PUBSUB', 'NUMSUB', lock .. ':wake:' .. first)[2] > 0
    if alive then
      break
    end
    redis.call('LPOP', KEYS[3])
    redis.call('DEL', lock .. ':waiter:' .. first)
    first = false
  end
end
if not current and (not first or first == token) then
  -- Announce the acquisition first: it proves, before anything is written,
  -- that this user may PUBLISH, which release needs (a script error does
  -- not roll back earlier writes).
  redis.call('PUBLISH', lock .. ':acquired', '1')
  local now = redis.call('TIME')
  local fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if last >= fence then
    fence = last + 1
  end
  redis.call('SET', lock, token, 'PX', ARGV[2])
  redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', ARGV[2])
  leave_queue()
  -- The waiter now first in line learns the new holder's TTL (it bounds
  -- its sleep: this holder may crash and publish nothing).
  local next_waiter = mode ~= 'race' and redis.call('LINDEX', KEYS[3], 0)
  if next_waiter then
    redis.call('PUBLISH', lock .. ':wake:' .. next_waiter, '1')
  end
  return {1, fence}
end
if mode == 'queue' then
  if not redis.call('LPOS', KEYS[3], token) then
    redis.call('RPUSH', KEYS[3], token)
  end
  redis.call('SET', lock .. ':waiter:' .. token, '1', 'PX', ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
if current then
  return {0, redis.call('PTTL', lock)}
end
-- Free, but a live waiter is first: it may be asleep on a long timer (the
-- key was deleted or expired unannounced), so wake it.
redis.call('PUBLISH', lock .. ':wake:' .. first, '1')
return {0, -2}
