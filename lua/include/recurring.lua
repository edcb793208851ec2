-- recurring: promote's part for recurring timers (status c, see
-- recurring_put). A due schedule fires one event <name>.<tick_ms> (its
-- payload copied) and is put back at its next tick, in the same script, so
-- any number of daemons fire each tick once. The occurrence id names its
-- tick: should Redis come back from older data and run a tick again, an
-- occurrence still held (or whose result is kept) is not made twice. The
-- occurrence takes the schedule's priority level (field p of its record).
--@include cron

-- The occurrence to push for schedule name due at due, or nil; m is its record.
local function fire_recurring(name, m, due, now)
  local ok, nxt = pcall(spec_next, m.reason, m.created, now)
  if not ok or nxt == nil then
    to_dead(name, m, 'recurring timer spec unreadable: ' .. tostring(m.reason), now)
    return nil
  end
  local fire = spec_catch_up(m.reason)
  if not fire then
    -- skip: fire only while the tick after this one is not yet due.
    local ok2, after = pcall(spec_next, m.reason, m.created, due)
    fire = ok2 and after ~= nil and after > now
  end
  local oid = nil
  if fire then
    local id = name .. '.' .. fmt(due)
    if redis.call('HEXISTS', K.data, id) == 0 and redis.call('HEXISTS', K.results, id) == 0 then
      redis.call('HSET', K.data, id, redis.call('HGET', K.data, name) or '')
      local r = meta_new('r', now)
      meta_ext_set(r, 'p', meta_ext(m, 'p'))
      meta_put(id, r)
      oid = id
    end
    m.attempt = m.attempt + 1
  else
    m.returns = m.returns + 1
  end
  meta_put(name, m)
  redis.call('ZADD', K.timers, nxt, name)
  return oid
end
