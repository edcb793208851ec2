--[[
@script distribute
@version 4
@memory level
@summary The retry distributor's step for one service: take events whose
lease expired and route each back toward the ready queue after its backoff
(through the retry set) or, once its attempts are used up, to the dead
letters (a group member so dead-lettered finishes its group as failed).
At most limit events per call.
@key data
@key meta
@key retry
@key expired
@key dead
@key results
@key results_at
@key config
@key counters
@arg limit whole(1..10000) most events to route
@return tuple(retried:int,dead:int,more:bool) events scheduled for retry, events
dead-lettered, more (1 if the expired list still holds events)
@error INVALID_ARGUMENT
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include record
--@include deadletter
--@include backoff
--@include group_end

argc(1)
local p = load_policy()
local now = now_ms(p)
local limit = int_arg(1, 'limit', 1, 10000)
local ids = redis.call('RPOP', K.expired, limit)
if not ids then
  return {0, 0, 0}
end
local retried, dead = 0, 0
for _, id in ipairs(ids) do
  local m = meta_get(id)
  if m and m.s == 'x' then
    if m.attempt >= p.max_attempts then
      to_dead(id, m, m.reason .. '; attempts used up (' .. m.attempt .. ' of ' .. p.max_attempts .. ')', now)
      group_member_failed(m, id, now)
      dead = dead + 1
    else
      m.s = 'w'
      meta_put(id, m)
      redis.call('ZADD', K.retry, now + backoff_ms(p, id, m.attempt), id)
      retried = retried + 1
    end
  elseif m then
    count('orphaned', 1)
  else
    if quarantine(id, m, now) then
      dead = dead + 1
    end
  end
end
count('retried', retried)
local more = redis.call('LLEN', K.expired) > 0 and 1 or 0
return {retried, dead, more}
