-- counters: running totals in the counters hash. They are informative, so a
-- value someone overwrote with text must not abort a script after its
-- writes (Redis has no rollback): HINCRBY runs under pcall and a broken
-- field is restarted from this increment. A counters key of a foreign type
-- is left alone the same way (stats refuses it with WRONG_TYPE): that is
-- why no script's type guard checks counters, a TYPE call per script call.
local function count(field, n)
  if n ~= 0 then
    local r = redis.pcall('HINCRBY', K.counters, field, n)
    if type(r) == 'table' and r.err then
      redis.pcall('HSET', K.counters, field, n)
    end
  end
end
