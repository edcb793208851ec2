-- clock: the only source of "now". Due times and lease deadlines are judged
-- by the Redis server's clock, never a client's, so a timer is never early
-- because a producer's clock runs fast. The test clock lets conformance
-- vectors freeze time so that no vector passes or fails by luck of timing.
--
-- The test clock is the field test_clock of the service's config hash, read
-- by load_policy in the HMGET it already makes: now_ms(p) takes the table
-- load_policy returned. It is not a key of its own on purpose: production
-- never sets it, and a script that declares a key that does not exist makes
-- Redis Cluster refuse the whole call (TRYAGAIN) while its slot migrates.
local function now_ms(p)
  local frozen = p.test_clock
  if frozen then
    local n = number(frozen)
    if not n or n ~= math.floor(n) then
      fail(E.CORRUPT_STATE, 'test clock (field test_clock of ' .. K.config ..
        ') is not a whole number')
    end
    return n
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
