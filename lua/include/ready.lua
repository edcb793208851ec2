-- ready: putting events back at the front of the ready queue.

-- Put ids back at the front of the ready queue (the tail RPOP takes first),
-- so that ids[1] is delivered next, then ids[2]...
local function to_front(ids)
  local rev = {}
  for j = #ids, 1, -1 do
    rev[#rev + 1] = ids[j]
  end
  redis.call('RPUSH', K.ready, unpack(rev))
end
