--[[
@script stats
@version 6
@memory none
@summary One service's numbers: queue lengths, running totals, the
effective policy, the schema stamp and whether the test clock is set. The
dead copies a cancel leaves in the ready list (void) are not counted as
ready, and the event next in line is found past those at the list's tail
(at most 100 read).
@key ready
@key prio
@key data
@key meta
@key leases
@key timers
@key retry
@key expired
@key dead
@key results_at
@key counters
@key config
@key void
@return map(num) name, value pairs: ready (at every priority level), in_flight, timers, retrying, expired,
dead, results, oldest_ready_created_ms (when the event next in line was created,
ms, Redis clock; -1 when none is ready, or when the next in line lies behind
more than 100 dead copies at the ready list's tail), then counters prefixed 'total.', policy
fields prefixed 'policy.', schema, test_clock (config's field test_clock as
stored, -1 if unset)
@error SCHEMA_MISMATCH
@error INVALID_ARGUMENT
@error CORRUPT_STATE
]]
--@include base
--@include policy
--@include record
--@include fresh
--@include marker
--@include void

local p = load_policy()
-- The wake marker (ready.lua), at the list's tail when there, is no event.
local tail = redis.call('LINDEX', K.ready, -1)
local marker = tail == READY_MARKER and 1 or 0
-- Nor are the dead copies of cancelled events (cancel_event): their total.
local dead_copies = tonumber(redis.call('HGET', K.void, '') or '0') or 0
local out = {
  'ready', math.max(redis.call('LLEN', K.ready) - marker - dead_copies, 0) +
    redis.call('ZCARD', K.prio),
  'in_flight', redis.call('ZCARD', K.leases),
  'timers', redis.call('ZCARD', K.timers),
  'retrying', redis.call('ZCARD', K.retry),
  'expired', redis.call('LLEN', K.expired),
  'dead', redis.call('ZCARD', K.dead),
  'results', redis.call('ZCARD', K.results_at),
  'oldest_ready_created_ms', -1,
}
-- The next event to be delivered is the first of prio, else the list's tail
-- (RPOP end): now minus its creation is the queue's lag, the number an
-- operator alerts on. A few O(log n) reads and one HGET, bounded whatever
-- the queue's length. The creation time, not
-- an age: the script stays clock-free (the caller subtracts it from Redis
-- TIME), and an event from a timer or a retry counts from its creation.
local next_id = redis.call('ZRANGE', K.prio, 0, 0)[1]
if not next_id and dead_copies > 0 then
  -- Past the dead copies at the tail, as dequeue skips them (the first c
  -- copies of an id with c dead ones, from the tail): at most TAIL_WALK read;
  -- none found within them (all dead) leaves -1.
  local TAIL_WALK = 100
  local part, left = redis.call('LRANGE', K.ready, -TAIL_WALK, -1), {}
  void_counts(part, left)
  for j = #part, 1, -1 do
    local id = part[j]
    if id ~= READY_MARKER then
      if left[id] > 0 then
        left[id] = left[id] - 1
      else
        next_id = id
        break
      end
    end
  end
elseif not next_id then
  next_id = marker == 1 and redis.call('LINDEX', K.ready, -2) or tail
end
if next_id then
  local m = meta_or_fresh(next_id)
  if m then
    out[16] = m.created
  end
end
local totals = redis.call('HGETALL', K.counters)
for i = 1, #totals, 2 do
  out[#out + 1] = 'total.' .. totals[i]
  -- Text someone wrote over a counter is shown as it is, not dropped from the reply.
  out[#out + 1] = tonumber(totals[i + 1]) or totals[i + 1]
end
for _, f in ipairs(POLICY_FIELDS) do
  out[#out + 1] = 'policy.' .. f
  -- Fractions travel as text: Redis would truncate a Lua number to an integer.
  out[#out + 1] = tostring(p[f])
end
out[#out + 1] = 'schema'
local schema = redis.call('HGET', K.config, 'schema') or SCHEMA
out[#out + 1] = tonumber(schema) or schema
out[#out + 1] = 'test_clock'
local clock = p.test_clock or -1
out[#out + 1] = tonumber(clock) or clock
return out
