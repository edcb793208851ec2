-- prune: drop up to n entries whose retention ended. Retention is a ZSET
-- scored by end time plus a hash; never EXPIRE, whose expiry is lazy and
-- which cannot expire one field of a hash anyway.
local function prune(zset, hash, now, n)
  local old = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', 0, n)
  if #old > 0 then
    redis.call('ZREM', zset, unpack(old))
    redis.call('HDEL', hash, unpack(old))
  end
  return #old
end
