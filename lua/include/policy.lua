-- policy: the service's schema stamp and retry/lease policy.
-- A service needs no configuration: absent fields fall back to DEFAULTS.
-- POLICY_FIELDS, DEFAULTS, policy_defaults(), policy_ranges() and POLICY_MAX.f
-- (a field's largest value, folded by the build) come from keys.json (generated).

-- Refuse data stamped by a schema version this one does not read (stamp:
-- the schema field; SCHEMA_READS, keys.json schema_reads).
local function check_schema(stamp)
  if stamp and not SCHEMA_READS[tonumber(stamp)] then
    fail(E.SCHEMA_MISMATCH, 'service data has schema ' .. tostring(stamp) ..
      ', this client speaks schema ' .. SCHEMA)
  end
end

-- Stored policy field f as a number, else the call is refused as corrupt.
local function policy_number(f, x)
  local n = number(x)
  if not n then
    fail(E.CORRUPT_STATE, 'config field ' .. f .. ' of ' .. K.config .. ' is not a finite number')
  end
  return n
end

-- Read the policy; refuse data stamped by another schema version. The same
-- HMGET reads config's test_clock field (not a policy field: tests set it with
-- a plain HSET, configure refuses it); the returned table carries it, as
-- stored (nil unless a test set it), in p.test_clock for now_ms(p) and stats,
-- and the schema stamp found in p.schema (nil on a new service) for stamp_schema(p).
local function load_policy()
  local v = on('HMGET', K.config, 'schema', 'test_clock', unpack(POLICY_FIELDS))
  check_schema(v[1])
  local p = policy_defaults()
  for i, f in ipairs(POLICY_FIELDS) do
    local x = v[i + 2]
    if x then
      p[f] = policy_number(f, x)
    end
  end
  p.test_clock = v[2] or nil
  p.schema = v[1] or nil
  return p
end

-- As load_policy, for a per-event script that uses one policy field f
-- (enqueue): only f is read and checked (default d, the caller's
-- DEFAULTS.f, which the build folds to its value), so the call builds none of
-- the policy tables (a 16-field HMGET and its parse were a visible part of a
-- single enqueue). A corrupt field it does not use is refused by the scripts
-- that use it.
local function load_policy_one(f, d)
  local v = on('HMGET', K.config, 'schema', 'test_clock', f)
  check_schema(v[1])
  local p = {test_clock = v[2] or nil, schema = v[1] or nil}
  if v[3] then
    p[f] = policy_number(f, v[3])
  else
    p[f] = d
  end
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
  if tonumber(p.schema) ~= SCHEMA then
    -- An older schema this one reads (SCHEMA_READS): from this write on the
    -- service may hold what only this schema reads (fresh events), so its
    -- clients must refuse it rather than misread it.
    redis.call('HSET', K.config, 'schema', SCHEMA)
  end
  return false
end
