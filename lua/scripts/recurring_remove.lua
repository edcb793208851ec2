--[[
@script recurring_remove
@version 1
@memory level
@wait
@summary Remove a recurring timer by name. Events it already fired are
ordinary events and are not touched.
@key timers
@key data
@key meta
@key recurring
@key counters
@arg name id the schedule's name
@return value(bool) 1 if the schedule existed and is gone, 0 otherwise
@error INVALID_ARGUMENT
]]
--@include base
--@include counters
--@include record

argc(1)
local name = ARGV[1]
local m = meta_get(name)
if not m or m.s ~= 'c' then
  -- Not a schedule (or an unreadable record, which is not this call's to drop);
  -- a name left in the set without its record goes quietly.
  redis.call('SREM', K.recurring, name)
  return 0
end
redis.call('ZREM', K.timers, name)
redis.call('HDEL', K.data, name)
meta_del({name})
redis.call('SREM', K.recurring, name)
count('recurring_removed', 1)
return 1
