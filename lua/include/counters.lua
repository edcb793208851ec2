-- counters: running totals in the counters hash. They are informative, so a
-- value someone overwrote with text must not abort a script after its
-- writes (Redis has no rollback): HINCRBY runs under pcall and a broken
-- field is restarted from this increment.
local function count(field, n)
  if n ~= 0 then
    local r = redis.pcall('HINCRBY', K.counters, field, n)
    if type(r) == 'table' and r.err then
      redis.call('HSET', K.counters, field, n)
    end
  end
end
