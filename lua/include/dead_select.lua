-- dead_select: which dead letters a requeue or purge acts on. Only ids
-- that really are in the dead set are returned, once each, so naming a live
-- event can never requeue or purge it and naming one twice cannot put it in
-- the ready queue twice.
local function select_dead()
  local mode = ARGV[1]
  if mode == 'oldest' then
    argc(2)
    local n = int_arg(2, 'count', 1, LIMITS.batch)
    return redis.call('ZRANGE', K.dead, 0, n - 1)
  elseif mode == 'ids' then
    if #ARGV < 2 or #ARGV > LIMITS.batch + 1 then
      fail(E.INVALID_ARGUMENT, 'give 1..' .. LIMITS.batch .. ' ids')
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
  fail(E.INVALID_ARGUMENT, "mode must be 'oldest' or 'ids', got " .. tostring(mode))
end
