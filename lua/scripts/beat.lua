--[[
@script beat
@version 2
@memory level
@summary Record that a daemon is alive, by the Redis clock (the scheduler
and distributor call it every second; `homing stats` reads the beats). A
script rather than a plain HSET so that it runs on a full Redis: a daemon
draining a full Redis must not look dead. One field per daemon name, so it
cannot grow memory without bound (stats prunes names gone quiet).
@key daemons
@arg name name(256) the daemon's name (role:host:pid)
@return value(int) the beat's time in ms
@error INVALID_ARGUMENT
]]
--@include base

argc(1)
if ARGV[1] == '' or #ARGV[1] > 256 then
  fail(E.INVALID_ARGUMENT, 'daemon name must be 1..256 bytes')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', K.daemons, ARGV[1], fmt(now))
return now
