--[[
@script extend
@version 4
@memory level
@summary Extend the leases of in-flight events (extend_lease; the worker's
heartbeat), reserved or started. Refused per item when the token is no
longer current. Runs on a full Redis: it only moves scores.
@key data unguarded: HEXISTS (lease.lua fresh_exists) only when a record is absent, before any write
@key meta
@key leases
@key config
@arg lease_ms whole(0..43200000) new lease length from now, in ms; 0 takes the
service's lease_ms
@arg count count(items) number of items
@arg items list(id:id,token:token) per item: id, token
@return items(int) per item the new deadline in ms, or STALE_LEASE, UNKNOWN_EVENT
or CORRUPT_STATE
@error INVALID_ARGUMENT
@error SCHEMA_MISMATCH
@error CORRUPT_STATE reported per item
@error STALE_LEASE reported per item
@error UNKNOWN_EVENT reported per item
]]
--@include base
--@include clock
--@include policy
--@include lease

local p = load_policy()
local now = now_ms(p)
local lease = int_arg(1, 'lease_ms', 0, POLICY_MAX.lease_ms)
local n = int_arg(2, 'count', 1, LIMITS.batch)
argc(2 + 2 * n)
if lease == 0 then
  lease = p.lease_ms
end
local deadline = now + lease
local out = {}
for i = 1, n do
  local id, token = ARGV[2 * i + 1], tonumber(ARGV[2 * i + 2])
  local m = meta_get(id)
  out[i] = refusal(m, token, id)
  if not out[i] then
    redis.call('ZADD', K.leases, deadline, id)
    out[i] = deadline
  end
end
return out
