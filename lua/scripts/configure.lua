--[[
@script configure
@version 4
@memory grows
@wait
@summary Override a service's policy (the fields of keys.json's policy:
lease_ms, max_attempts, backoff_*, result_ttl_ms, idem_ttl_ms,
handler_timeout_ms, paused, rate_limit, rate_window_ms, concurrency...).
Optional: a service works on the defaults. A value of '' removes the
override. Validates every pair before writing.
@key config
@arg policy pairs(policy) pairs of field name and value ('' removes the override)
@return map(num) the effective policy: field, value (as text)
@error INVALID_ARGUMENT unknown field or value out of range
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include policy

load_policy()
local RANGES = policy_ranges()
if #ARGV % 2 ~= 0 then
  fail(E.INVALID_ARGUMENT, 'give field, value pairs')
end
for i = 1, #ARGV, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  local r = RANGES[f]
  if not r then
    fail(E.INVALID_ARGUMENT, 'unknown policy field ' .. f)
  end
  local x = number(v)
  if v ~= '' and (not x or x < r[1] or x > r[2] or (r[3] and x ~= math.floor(x))) then
    fail(E.INVALID_ARGUMENT, f .. ' must be in [' .. r[1] .. ', ' .. r[2] .. '], got ' .. v)
  end
end
stamp_schema()
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', K.config, ARGV[i])
  else
    redis.call('HSET', K.config, ARGV[i], ARGV[i + 1])
  end
end
local p = load_policy()
local out = {}
for _, f in ipairs(POLICY_FIELDS) do
  out[#out + 1] = f
  out[#out + 1] = tostring(p[f])
end
return out
