-- The minimal leased design's dequeue: LPOP n, ZADD deadline from TIME, HMGET bodies.
-- KEYS: bodies, queue, leases. ARGV: n, lease ms. Reply: id1, body1, ...
local ids = redis.call('LPOP', KEYS[2], ARGV[1])
if not ids then return {} end
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local z = {}
for i, id in ipairs(ids) do z[2 * i - 1] = deadline; z[2 * i] = id end
redis.call('ZADD', KEYS[3], unpack(z))
local bodies = redis.call('HMGET', KEYS[1], unpack(ids))
local out = {}
for i, id in ipairs(ids) do out[2 * i - 1] = id; out[2 * i] = bodies[i] end
return out
