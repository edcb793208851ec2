--[[
@script start
@version 4
@memory level
@summary Mark reserved events as started (the worker, before it runs an
event dequeued with must_start 1): the attempt is charged now, so that if
the handler kills its worker, the event's next return counts against
max_attempts and a poison event reaches the dead letters. An event already
started is left as it is.
@key data unguarded: HEXISTS (lease.lua fresh_exists) only when a record is absent, before any write
@key meta
@arg count count(items) number of items
@arg items list(id:id,token:token) per item: id, token
@return items(int) per item the attempt number now charged, or STALE_LEASE,
UNKNOWN_EVENT or CORRUPT_STATE
@error INVALID_ARGUMENT
@error STALE_LEASE reported per item
@error UNKNOWN_EVENT reported per item
@error CORRUPT_STATE reported per item
]]
--@include base
--@include lease

local n = int_arg(1, 'count', 1, LIMITS.batch)
argc(1 + 2 * n)
local out = {}
for i = 1, n do
  local id, token = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  local m = meta_get(id)
  out[i] = refusal(m, token, id)
  if not out[i] then
    if m.s == 'v' then
      m.s, m.attempt = 'l', m.attempt + 1
      meta_put(id, m)
    end
    out[i] = m.attempt
  end
end
return out
