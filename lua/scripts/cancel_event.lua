--[[
@script cancel_event
@version 2
@memory level
@wait
@summary Cancel a queued event by id (cancel): one that is ready, waiting
out a retry backoff, or a pending timer is removed with its payload and
record, as if it had never been enqueued. A leased or reserved event is not
touched (its holder may be running it: complete or fail decide), nor a dead
letter (dead purge removes those), a completed event or a recurring timer
(recurring_remove). The reply says which it was. Removing a ready event is
an LREM over the ready queue: O(queue length), an operator's call, not a hot
path (a ready event of a priority level above 0 is a ZREM of the prio zset).
A cancelled member of a group finishes its group as failed
(enqueue_group), naming it.
@key ready
@key prio
@key timers
@key retry
@key data
@key meta
@key results
@key results_at
@key config
@key counters
@arg id id the event's id
@return tuple(cancelled:bool,state:str) 1 and the state it was cancelled from
(ready, waiting, timer), or 0 and why not: leased, reserved, dead, recurring,
expired or unknown
@error INVALID_ARGUMENT
@error CORRUPT_STATE
@error SCHEMA_MISMATCH
]]
--@include base
--@include counters
--@include record
--@include clock
--@include policy
--@include group_end
--@include ready

argc(1)
local id = ARGV[1]
local m = meta_get(id)
if m == false then
  fail(E.CORRUPT_STATE, 'record of ' .. id .. ' is unreadable')
end
local names = {r = 'ready', w = 'waiting', t = 'timer', l = 'leased', v = 'reserved',
  d = 'dead', x = 'expired', c = 'recurring'}
if m == nil then
  if redis.call('HEXISTS', K.data, id) == 0 then
    return {0, 'unknown'}
  end
  -- A payload without a record: an event enqueued ready and never delivered
  -- (record.lua writes no record until the first lease).
  m = {s = 'r'}
end
-- A group member: the clock (the policy's test clock) is read before any write.
local now = meta_ext(m, 'g') > 0 and now_ms(load_policy()) or nil
local removed = 0
if m.s == 'r' and level_of(m) > 0 then
  removed = redis.call('ZREM', K.prio, id)
  drop_marker()
elseif m.s == 'r' then
  removed = redis.call('LREM', K.ready, 1, id)
elseif m.s == 'w' then
  removed = redis.call('ZREM', K.retry, id)
elseif m.s == 't' then
  removed = redis.call('ZREM', K.timers, id)
end
if removed == 0 then
  return {0, names[m.s] or m.s}
end
redis.call('HDEL', K.data, id)
meta_del({id})
if now then
  group_member_failed(m, id, now)
end
count('cancelled', 1)
return {1, names[m.s]}
