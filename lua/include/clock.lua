-- clock: the only source of "now". Due times and lease deadlines are judged
-- by the Redis server's clock, never a client's, so a timer is never early
-- because a producer's clock runs fast. The test clock key lets conformance
-- vectors freeze time so that no vector passes or fails by luck of timing.
local function now_ms()
  local frozen = redis.call('GET', K.clock)
  if frozen then
    local n = number(frozen)
    if not n or n ~= math.floor(n) then
      fail(E.CORRUPT_STATE, 'test clock ' .. K.clock .. ' is not a whole number')
    end
    return n
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
