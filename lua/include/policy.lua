-- policy: the service's schema stamp and retry/lease policy.
-- A service needs no configuration: absent fields fall back to DEFAULTS.
-- POLICY_FIELDS, DEFAULTS and policy_ranges() come from keys.json (generated).

-- Read the policy; refuse data stamped by another schema version. The same
-- HMGET reads config's test_clock field (not a policy field: tests set it with
-- a plain HSET, configure refuses it); the returned table carries it, as
-- stored (nil unless a test set it), in p.test_clock for now_ms(p) and stats,
-- and the schema stamp found in p.schema (nil on a new service) for stamp_schema(p).
-- Only the fields read are in p.
local function load_policy(fields)
  -- fields: the policy fields the caller uses (default all). A per-event
  -- script that needs one (enqueue) reads and checks only that one: a
  -- 16-field HMGET and its parse were a visible part of a single enqueue.
  fields = fields or POLICY_FIELDS
  local v = on('HMGET', K.config, 'schema', 'test_clock', unpack(fields))
  if v[1] and tonumber(v[1]) ~= SCHEMA then
    fail(E.SCHEMA_MISMATCH, 'service data has schema ' .. tostring(v[1]) ..
      ', this client speaks schema ' .. SCHEMA)
  end
  local p = {}
  for i, f in ipairs(fields) do
    local x = v[i + 2]
    if x then
      p[f] = number(x)
      if not p[f] then
        fail(E.CORRUPT_STATE, 'config field ' .. f .. ' of ' .. K.config .. ' is not a finite number')
      end
    else
      p[f] = DEFAULTS[f]
    end
  end
  p.test_clock = v[2] or nil
  p.schema = v[1] or nil
  return p
end

-- First write to a service stamps the schema version it was written with.
-- Given the policy load_policy read (p.schema: the stamp it found), a
-- service already stamped costs no call. True when it stamped (the field
-- was absent when load_policy read it, in this same call).
local function stamp_schema(p)
  if not (p and p.schema) then
    redis.call('HSETNX', K.config, 'schema', SCHEMA)
    return true
  end
  return false
end
