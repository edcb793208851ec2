--[[
@script snooze
@version 3
@memory level
@wait
@summary A consumer asks for a leased event again after a delay, without it
counting as an attempt (Oban's snooze): the event waits in retry until
now + delay_ms, its current delivery uncharged (a started lease gives its
attempt back, as release does; a reserved one had none), and its snooze
count (record field s) goes up by one. Bounded: an event already snoozed
max_snoozes times is dead-lettered instead, with the reason and its delivery
charged and counted as a fail's would be (failed, dead), so it cannot
snooze for ever unnoticed. A group member so dead-lettered finishes its group
as failed.
@key data unguarded: HEXISTS (lease.lua fresh_exists) only when a record is absent, before any write
@key meta
@key leases
@key retry
@key dead
@key results
@key results_at
@key config
@key counters
@arg id id event id
@arg token token the lease token of the caller
@arg delay_ms whole(0..43200000) how long until the event is ready again, in ms
@return tuple(action:str,at_ms:int) 'snoozed', due_ms  or  'dead', died_ms
@error INVALID_ARGUMENT
@error UNKNOWN_EVENT
@error STALE_LEASE
@error CORRUPT_STATE
@error SCHEMA_MISMATCH
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include lease
--@include deadletter
--@include group_end

argc(3)
local p = load_policy()
local now = now_ms(p)
local id = ARGV[1]
local delay = int_arg(3, 'delay_ms', 0, 43200000)
local m = held(id, ARGV[2])
redis.call('ZREM', K.leases, id)
local snoozes = meta_ext(m, 's')
if snoozes >= p.max_snoozes then
  if m.s == 'v' then
    m.attempt = m.attempt + 1
  end
  count('failed', 1)  -- the delivery ends as a fail's would: failed + expired = retried + dead
  to_dead(id, m, 'snooze refused: max_snoozes (' .. fmt(p.max_snoozes) .. ') reached', now)
  group_member_failed(m, id, now)
  return {'dead', now}
end
if m.s == 'l' then
  m.attempt = math.max(m.attempt - 1, 0)
end
meta_ext_set(m, 's', snoozes + 1)
m.s, m.token = 'w', 0
meta_put(id, m)
redis.call('ZADD', K.retry, now + delay, id)
count('snoozed', 1)
return {'snoozed', now + delay}
