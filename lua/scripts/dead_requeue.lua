--[[
@script dead_requeue
@version 4
@memory level
@wait
@summary Give dead letters a new life: move them back to the ready queue
with their attempt count reset, at the back of their priority level (the
priority is kept; the other record fields start again). Either the oldest
count entries, or the ids named. Bounded; the CLI loops with progress for
large requeues. A requeued member of a group stays its member; if the group
failed because of it (its first failure), the group runs again: another
member still in the dead letters becomes its failure, or else it is
unfinished again and not retired until it finishes anew (a group already
retired or forgotten is gone: its members then complete as events outside
any group).
@key ready
@key prio
@key data
@key meta
@key dead
@key results
@key results_at
@key counters
@arg count whole(1..batch) how many of the oldest, when no ids are given
@arg ids rest(id) the dead letters to requeue (none: the oldest count)
@return tuple(requeued:int,remaining:int) events requeued, dead letters remaining
@error INVALID_ARGUMENT
]]
--@include base
--@include counters
--@include dead_select
--@include record
--@include group
--@include ready

local ids = select_dead()
local moved, levels, back = {}, {}, {}
for _, id in ipairs(ids) do
  local m = meta_get(id)
  redis.call('ZREM', K.dead, id)
  if redis.call('HEXISTS', K.data, id) == 1 then
    local r = meta_new('r', m and m.created or 0)
    meta_ext_set(r, 'p', level_of(m))
    local gn = m and meta_ext(m, 'g') or 0
    if gn > 0 then
      meta_ext_set(r, 'g', gn)
      back[#back + 1] = {gn, id}
    end
    meta_put(id, r)
    moved[#moved + 1] = id
    levels[#moved] = level_of(m)
  else
    -- Nothing left to deliver: the record goes with the entry.
    meta_del({id})
  end
end
-- Groups whose first failure was requeued: the next dead member, or none.
for _, b in ipairs(back) do
  local gn, id = b[1], b[2]
  local g = group_get(gn)
  if g and g.failed == id then
    local members = group_ids(gn)
    local recs = meta_get_many(members)
    g.failed = ''
    for i, mid in ipairs(members) do
      if recs[i] and recs[i].s == 'd' and meta_ext(recs[i], 'g') == gn then
        g.failed = mid
        break
      end
    end
    if g.failed == '' and g.done < g.total then
      g.finished = 0
      redis.call('ZREM', K.results_at, group_field(gn))
    end
    group_put(gn, g)
  end
end
if #moved > 0 then
  to_ready(moved, levels)
  count('requeued', #moved)
end
return {#moved, redis.call('ZCARD', K.dead)}
