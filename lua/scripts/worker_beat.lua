--[[
@script worker_beat
@version 1
@memory level
@summary Record that a worker is alive, by the Redis clock, with what the
dashboard shows of it: service, host, pid, concurrency, how many events it
holds and a few of their ids (so an event's holder can be named). One field
per worker name in the global hash workers. Bounded without a reader: each
beat samples at most 8 other fields (HRANDFIELD) and deletes those silent for
at least max(forget_ms, 3 beats of their own), so names of workers that died
do not pile up. A script rather than a plain HSET so that it runs on a full
Redis: a worker draining a full Redis must not look dead.
@key workers
@arg name name(256) the worker's name (service:host:pid:random), unique per Worker
@arg service text(128) the service it consumes (a valid service name)
@arg host text(255) the host it runs on
@arg pid whole(0..max) its process id
@arg concurrency whole(1..max) its handler slots
@arg held whole(0..max) how many leases it holds
@arg every_ms ms how often it beats (alive while beats come in time)
@arg stopped bool 1: it stopped gracefully (this is its last beat)
@arg forget_ms ms the silence after which another worker's field is pruned
@arg ids rest(id) up to LIMITS.batch ids of events it holds (a sample)
@return tuple(at:int,pruned:int) the beat's time in ms (Redis clock) and how
many silent workers' fields this beat deleted
@error INVALID_ARGUMENT
]]
--@include base

-- The value is 'beat;every;pid;concurrency;held;stopped;service;ids;host'
-- (ids separated by spaces): every field before host is a number or a name
-- that cannot hold ';' or ' ', so host (free text) goes last and may hold
-- anything. (';', not the meta record's '|': this is not an event's record.)
local NAME_PATTERN = '^[%w_][%w_%.%-]*$'

if #ARGV < 9 or #ARGV > 9 + LIMITS.batch then
  fail(E.INVALID_ARGUMENT, 'expected 9 arguments and up to ' .. LIMITS.batch ..
    ' ids, got ' .. #ARGV .. ' arguments')
end
local name = ARGV[1]
if name == '' or #name > 256 then
  fail(E.INVALID_ARGUMENT, 'worker name must be 1..256 bytes')
end
local service = ARGV[2]
if #service > 128 or not string.find(service, NAME_PATTERN) then
  fail(E.INVALID_ARGUMENT, 'service must be a valid service name, got ' .. service)
end
if #ARGV[3] > 255 then
  fail(E.INVALID_ARGUMENT, 'host must be at most 255 bytes')
end
local pid = int_arg(4, 'pid', 0)
local concurrency = int_arg(5, 'concurrency', 1)
local held = int_arg(6, 'held', 0)
local every = int_arg(7, 'every_ms', 0)
local stopped = bool_arg(8, 'stopped') and '1' or '0'
local forget = int_arg(9, 'forget_ms', 0)
local ids = {}
for i = 10, #ARGV do
  local id = ARGV[i]
  if #id > 128 or not string.find(id, NAME_PATTERN) then
    fail(E.INVALID_ARGUMENT, 'held ids must be valid event ids, got ' .. id)
  end
  ids[#ids + 1] = id
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- A bounded sweep: 8 random fields, whatever the hash's size.
local pruned = 0
local sample = redis.call('HRANDFIELD', K.workers, 8, 'WITHVALUES')
for i = 1, #sample, 2 do
  local other, value = sample[i], sample[i + 1]
  if other ~= name then
    local beat, their_every = string.match(value, '^(%d+);(%d+);')
    beat, their_every = tonumber(beat), tonumber(their_every)
    -- A value nobody could parse is pruned too: it would never age otherwise.
    if not beat or now - beat >= math.max(forget, 3 * their_every) then
      redis.call('HDEL', K.workers, other)
      pruned = pruned + 1
    end
  end
end
redis.call('HSET', K.workers, name, table.concat({fmt(now), fmt(every), fmt(pid),
  fmt(concurrency), fmt(held), stopped, service, table.concat(ids, ' '), ARGV[3]}, ';'))
return {now, pruned}
