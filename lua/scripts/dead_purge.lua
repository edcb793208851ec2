--[[
@script dead_purge
@version 3
@memory level
@wait
@summary Delete dead letters for good: the oldest count entries, or the
ids named. The only way an event leaves homing without completing.
@key data
@key meta
@key dead
@key counters
@arg count whole(1..batch) how many of the oldest, when no ids are given
@arg ids rest(id) the dead letters to purge (none: the oldest count)
@return tuple(purged:int,remaining:int) events purged, dead letters remaining
@error INVALID_ARGUMENT
]]
--@include base
--@include counters
--@include dead_select
--@include record

local ids = select_dead()
if #ids > 0 then
  redis.call('ZREM', K.dead, unpack(ids))
  redis.call('HDEL', K.data, unpack(ids))
  meta_del(ids)
  count('purged', #ids)
end
return {#ids, redis.call('ZCARD', K.dead)}
