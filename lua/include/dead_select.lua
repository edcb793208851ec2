-- dead_select: which dead letters a requeue or purge acts on: ARGV is the
-- count, then the ids. With ids, exactly those (count is ignored); without,
-- the oldest count. Only ids that really are in the dead set are returned,
-- once each, so naming a live event can never requeue or purge it and naming
-- one twice cannot put it in the ready queue twice.
local function select_dead()
  if #ARGV < 1 or #ARGV > 1 + LIMITS.batch then
    fail(E.INVALID_ARGUMENT, 'expected a count and 0..' .. LIMITS.batch .. ' ids, got ' ..
      #ARGV .. ' arguments')
  end
  local n = int_arg(1, 'count', 1, LIMITS.batch)
  if #ARGV == 1 then
    return redis.call('ZRANGE', K.dead, 0, n - 1)
  end
  local ids, seen = {}, {}
  for i = 2, #ARGV do
    if not seen[ARGV[i]] and redis.call('ZSCORE', K.dead, ARGV[i]) then
      seen[ARGV[i]] = true
      ids[#ids + 1] = ARGV[i]
    end
  end
  return ids
end
