-- marker: the wake marker of the ready list (see ready.lua), on its own so
-- that scripts which only count the ready queue (forget, stats) need no more.

-- Workers block on the ready list (BLMOVE ready ready), not on prio: an event
-- that goes into prio while the list is empty pushes this marker so that they
-- wake. It is no valid id (keys.json id_pattern). At most one exists, at the
-- list's tail, and only while prio is not empty: it is pushed only onto an
-- empty list, to_front takes it off before pushing ids behind it, and dequeue
-- and cancel_event drop it once prio is empty (drop_marker). dequeue never
-- delivers it.
local READY_MARKER = '~'

-- Take the marker off the list's tail once prio is empty, so that an idle
-- worker does not wake for it and stats counts no phantom event.
local function drop_marker()
  if redis.call('LINDEX', K.ready, -1) == READY_MARKER and
      redis.call('ZCARD', K.prio) == 0 then
    redis.call('RPOP', K.ready)
  end
end
