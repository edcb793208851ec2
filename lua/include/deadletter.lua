-- deadletter: moving events to the dead letters.
--@include record
--@include counters
--@include fresh

-- Dead-letter an event: kept with its payload and reason until requeued or
-- purged. Nothing in homing drops an event silently.
--@cold
local function to_dead(id, m, reason, now)
  m.s, m.token, m.reason = 'd', 0, reason
  meta_put(id, m)
  redis.call('ZADD', K.dead, now, id)
  count('dead', 1)
end

-- A popped id whose record is missing or unreadable cannot be delivered, but
-- it must not vanish either: keep what is left in the dead letters.
-- Returns true if it was dead-lettered, false if nothing was left of it.
--@cold
local function quarantine(id, m, now)
  if m == false then
    to_dead(id, {attempt = 0, created = now}, 'unreadable bookkeeping record: ' .. meta_raw(id), now)
    return true
  end
  local raw = redis.call('HGET', K.data, id)
  local _, born = data_env(raw or nil)
  if raw and not born then
    to_dead(id, {attempt = 0, created = now}, 'bookkeeping record missing', now)
  else
    -- Nothing left of it, or a stray copy of an event enqueued ready and never
    -- delivered (fresh.lua: it has no record), which is where it should be.
    count('orphaned', 1)
    return false
  end
  return true
end
