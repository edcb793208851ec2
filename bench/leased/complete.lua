-- The minimal leased design's complete: ZREM + HDEL.
-- KEYS: leases, bodies. ARGV: the ids.
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return #ARGV
