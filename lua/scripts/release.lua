--[[
@script release
@version 1
@summary Hand leased events back unprocessed (graceful shutdown, unused
prefetch): they go to the front of the ready queue, in the order given (the
first item is delivered next), and the delivery does not count as an attempt.
@key ready
@key meta
@key leases
@key counters
@arg count number of items, 1..1000
@arg id... then, per item: id, token
@return array of count status codes: 'OK', 'STALE_LEASE', 'UNKNOWN_EVENT'
or 'CORRUPT_STATE'
@error INVALID_ARGUMENT
@error STALE_LEASE reported per item
@error UNKNOWN_EVENT reported per item
@error CORRUPT_STATE reported per item
]]
--@include base
--@include counters

local n = int_arg(1, 'count', 1, 1000)
argc(1 + 2 * n)
local out, back = {}, {}
for i = 1, n do
  local id, token = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  local raw = redis.call('HGET', K.meta, id)
  if not raw then
    out[i] = E.UNKNOWN_EVENT
  else
    local s, a, tok, rest = string.match(raw, '^(%a)|(%d+)|(%d+)|(.*)$')
    if not s then
      out[i] = E.CORRUPT_STATE
    elseif s ~= 'l' or tonumber(tok) ~= token then
      out[i] = E.STALE_LEASE
    else
      redis.call('ZREM', K.leases, id)
      redis.call('HSET', K.meta, id, 'r|' .. math.max(tonumber(a) - 1, 0) .. '|0|' .. rest)
      back[#back + 1] = id
      out[i] = 'OK'
    end
  end
end
if #back > 0 then
  -- RPOP takes the tail first: push the batch back to front to keep its order.
  local rev = {}
  for j = #back, 1, -1 do
    rev[#rev + 1] = back[j]
  end
  redis.call('RPUSH', K.ready, unpack(rev))
  count('released', #back)
end
return out
