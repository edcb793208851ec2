-- void: the dead copies of cancelled events in the ready list (keys.json
-- void). cancel_event does not scan the list for a ready event of level 0:
-- it leaves the id where it is and counts it in the void hash (id -> how
-- many copies of that id in the list are no event, '' -> their total),
-- deleted when the total is back to 0. A dead copy is always older than any
-- live copy of the same id: an id enqueued again after its cancel is
-- LPUSHed behind its dead copies, and only leased events, which have none,
-- are pushed back at the tail (a release). So, walking the list from its
-- tail (RPOP end), of an id with c dead copies the first c met are the dead
-- ones: dequeue skips and takes them off, stats looks past them.
--@include marker

-- Add to left (id -> dead copies still ahead) the counts of the ids of part
-- (a stretch of the ready list) that left does not hold yet, in one HMGET.
-- A count someone overwrote with text reads as 0: that copy is delivered.
--@cold
local function void_counts(part, left)
  local ask = {}
  for j = 1, #part do
    local id = part[j]
    if left[id] == nil and id ~= READY_MARKER then
      left[id] = 0
      ask[#ask + 1] = id
    end
  end
  if #ask > 0 then
    local counts = redis.call('HMGET', K.void, unpack(ask))
    for j, id in ipairs(ask) do
      local c = counts[j]
      left[id] = c and string.match(c, '^%d+$') and tonumber(c) or 0
    end
  end
end
