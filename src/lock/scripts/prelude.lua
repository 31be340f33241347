-- SPDX-License-Identifier: MIT
-- Shared by the scripts: the build puts this text in front of each of them
-- (cmake/embed_lua.cmake), so that each is still one self-contained EVAL.

-- Wakes the first subscribed waiter in `queue` (a list of tokens) on its
-- channel LOCK:wake:TOKEN. Waiters ahead of it whose lease LOCK:waiter:TOKEN
-- ran out are dropped; those with a lease but no subscriber keep their place
-- for `grace` ms only (a live waiter whose connection dropped resubscribes
-- within it; a killed one never does). Looks at 100 waiters at most.
local function wake_first_subscribed(lock, queue, grace)
  local i = 0
  for _ = 1, 100 do
    local w = redis.call('LINDEX', queue, i)
    if not w then
      return
    end
    local lease_key = lock .. ':waiter:' .. w
    local left = redis.call('PTTL', lease_key)
    if left > 0 then
      if redis.call('PUBLISH', lock .. ':wake:' .. w, '1') > 0 then
        return
      end
      if left > tonumber(grace) then
        redis.call('PEXPIRE', lease_key, grace)
      end
      i = i + 1
    else
      redis.call('LREM', queue, 1, w)
      redis.call('DEL', lease_key)
    end
  end
end
