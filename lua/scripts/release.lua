--[[
@script release
@version 5
@memory level
@summary Hand leased events back unprocessed (graceful shutdown, unused
prefetch): they go to the front of the ready queue, each of its own priority level
(a release keeps the event's priority), in the order given (the
first item is delivered next), and the delivery does not count as an attempt
(a started lease gives its charged attempt back; a reserved one had none).
@key ready
@key prio
@key data unguarded: HEXISTS (lease.lua fresh_exists) only when a record is absent, before any write
@key meta
@key leases
@key counters
@arg count count(items) number of items
@arg items list(id:id,token:token) per item: id, token
@return items(ok) per item 'OK', or STALE_LEASE, UNKNOWN_EVENT or CORRUPT_STATE
@error INVALID_ARGUMENT
@error STALE_LEASE reported per item
@error UNKNOWN_EVENT reported per item
@error CORRUPT_STATE reported per item
]]
--@include base
--@include counters
--@include lease
--@include ready

local n = int_arg(1, 'count', 1, LIMITS.batch)
argc(1 + 2 * n)
local out, back, levels = {}, {}, {}
for i = 1, n do
  local id, token = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  local m = meta_get(id)
  out[i] = refusal(m, token, id)
  if not out[i] then
    redis.call('ZREM', K.leases, id)
    if m.s == 'l' then
      m.attempt = math.max(m.attempt - 1, 0)
    end
    m.s, m.token = 'r', 0
    meta_put(id, m)
    back[#back + 1] = id
    levels[#back] = level_of(m)
    out[i] = 'OK'
  end
end
if #back > 0 then
  to_front(back, levels)
  count('released', #back)
end
return out
