--[[
@script cancel
@version 4
@memory level
@wait
@summary Cancel a pending timer (cancel_timer). A timer that has already
fired is an ordinary event by then and is not touched; a recurring timer is
removed by recurring_remove, not here.
@key timers
@key data
@key meta
@key counters
@arg id id the timer's event id
@return value(bool) 1 if the timer was pending and is now gone, 0 otherwise
@error INVALID_ARGUMENT
]]
--@include base
--@include counters
--@include record

argc(1)
local id = ARGV[1]
local m = meta_get(id)
if m and m.s == 'c' then
  return 0 -- a recurring timer: recurring_remove removes it, with its name
end
if redis.call('ZREM', K.timers, id) == 0 then
  return 0
end
redis.call('HDEL', K.data, id)
meta_del({id})
count('cancelled', 1)
return 1
