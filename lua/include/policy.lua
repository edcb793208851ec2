-- policy: the service's schema stamp and retry/lease policy.
-- A service needs no configuration: absent fields fall back to DEFAULTS.
-- POLICY_FIELDS, DEFAULTS and POLICY_RANGES come from keys.json (generated).

-- Read the policy; refuse data stamped by another schema version.
local function load_policy()
  local v = redis.call('HMGET', K.config, 'schema', unpack(POLICY_FIELDS))
  if v[1] and tonumber(v[1]) ~= SCHEMA then
    fail(E.SCHEMA_MISMATCH, 'service data has schema ' .. tostring(v[1]) ..
      ', this client speaks schema ' .. SCHEMA)
  end
  local p = {}
  for i, f in ipairs(POLICY_FIELDS) do
    local x = v[i + 1]
    if x then
      p[f] = number(x)
      if not p[f] then
        fail(E.CORRUPT_STATE, 'config field ' .. f .. ' of ' .. K.config .. ' is not a finite number')
      end
    else
      p[f] = DEFAULTS[f]
    end
  end
  return p
end

-- First write to a service stamps the schema version it was written with.
local function stamp_schema()
  redis.call('HSETNX', K.config, 'schema', SCHEMA)
end
