-- The minimal leased design's enqueue_many (bench/README.md): HSET body + RPUSH id.
-- KEYS: bodies, queue. ARGV: id1, body1, id2, body2, ...
local n = #ARGV / 2
local ids = {}
for i = 1, n do ids[i] = ARGV[2 * i - 1] end
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('RPUSH', KEYS[2], unpack(ids))
return n
