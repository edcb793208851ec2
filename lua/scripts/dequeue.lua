--[[
@script dequeue
@version 7
@memory level
@summary Lease up to count ready events (none while the service is paused, no
more than its rate_limit per rate_window_ms and its concurrency allow): those
waiting at a priority level above 0 first (the prio zset, highest level
first, FIFO within a level), then the ready list's. Each lease takes a fresh
fencing token that no earlier lease of the service had, even after Redis restarted
from older data or a replica took over: tokens are the larger of the seq
counter + 1 and now_ms * 1000, so a counter rolled back by a restore is
overtaken by the clock. The lease ends at now + lease_ms unless extended.
In mode 'charge' the delivery counts as an attempt at once. In mode
'reserve' (the worker's prefetch) it does not: the event is reserved (v),
an attempt is charged only when its handler is known to have started (start,
fail), and a reserved lease that runs out goes back to ready uncharged. An
event that came back unstarted before is delivered with must_start 1: the
worker calls start before running it, so a poison event that kills its
worker is charged from then on; after max_attempts such returns it is
charged at once. An id whose record is missing or unreadable is moved to the
dead letters, not lost. The dead copies a cancel left in the ready list
(void) are skipped and taken off, at most LIMITS.batch of them per call;
when a call stops at that bound with nothing to hand out and the list not
empty, wait_ms is 1 (ask again at once). Without dead copies (no void key)
that costs one HGET.
Limits, across every worker, by the Redis clock: with rate_limit above 0 a
lease is logged in starts (its token, scored now) and at most rate_limit
leases are handed out in any rate_window_ms (a sliding window: the log is
trimmed of what is older first); with concurrency above 0 at most
concurrency - ZCARD(leases) are handed out (a reserved lease counts). When a
limit, or the pause, holds back ready events (of any level), wait_ms says
when to ask again: rate, the time until the oldest logged start leaves the
window; concurrency, the time until the first lease deadline, at most
BUSY_WAIT_MS (100: a completion may free a slot at any time); paused,
PAUSE_WAIT_MS (250). wait_ms is 0 when nothing ready was held back, but
for the 1 of a call stopped at the bound of dead copies (above).
@key ready unguarded: RPOP is the first write, or LLEN before any write when prio holds events (refused: nothing written)
@key prio unguarded: ZCARD before any write
@key data
@key meta
@key leases
@key starts
@key dead
@key seq unguarded: GET before any write
@key config unguarded: HMGET (the policy) before any write
@key counters unguarded: written only by count(), under pcall
@key void unguarded: HGET of the total before any write
@arg count whole(1..batch) most events to lease
@arg lease_ms whole(0..43200000) lease length in ms; 0 takes the service's lease_ms
@arg reserve bool 0: count the attempt now; 1: count it when started (the worker's prefetch)
@return records(deadline_ms:int,wait_ms:int|id:str,token:int,attempt:int,raw:bytes,must_start:bool)
the lease deadline and wait_ms (0, or how long to wait before asking again:
a limit or the pause held back ready events), then per event: id, token, attempt, envelope, must_start
(1: call start before running it)
@error INVALID_ARGUMENT
@error SCHEMA_MISMATCH
@error CORRUPT_STATE
]]
--@include base
--@include counters
--@include clock
--@include policy
--@include record
--@include deadletter
--@include ready
--@include fresh
--@include void

-- With dead copies in the list (void exists): up to k live ids from the
-- list's tail, the dead copies met on the way skipped silently (not
-- orphaned) and taken off void (lua/include/void.lua). The tail is read in
-- windows (LRANGE) and classified before anything is removed; one LTRIM
-- then removes what was walked over: dead copies, the marker, the ids
-- taken. Reads and writes that cannot fail (ready's and void's types were
-- checked before the pops), so the ids ZPOPMIN took are never lost to an
-- error here. ids and got (the batch so far) and the total of dead copies
-- come as arguments, not upvalues: the cold builder would capture them on
-- every call (lua/cold.py). Returns the new got and whether the walk
-- stopped at its bound. Declared first: the cold builder stands at the
-- last cold declaration, and the body's calls of fail come after it.
--@cold
local function take_live(ids, got, k, void_total)
  -- The most dead copies one call skips: a mass cancel is consumed a batch's
  -- worth per call, its work bounded like a batch's (an LRANGE per window and
  -- an HMGET of its ids, or one HGETALL of a small void; then one LTRIM and
  -- one write of void).
  local SKIP_MAX = LIMITS.batch
  local total = tonumber(void_total)
  local off, skipped, live, w = 0, 0, 0, k
  local left, touched = {}, {}
  -- A void no larger than two batches' ids (a few cancels, their copies
  -- perhaps far from the tail) is read whole, once: then no id of the list
  -- needs asking about (every id void does not name has no dead copy).
  local known = total <= 2 * k
  if known then
    local all = redis.call('HGETALL', K.void)
    for j = 1, #all, 2 do
      local c = all[j + 1]
      if all[j] ~= '' then
        left[all[j]] = string.match(c, '^%d+$') and tonumber(c) or 0
      end
    end
  end
  while k > 0 and skipped < SKIP_MAX do
    local part = redis.call('LRANGE', K.ready, -(off + w), -(off + 1))
    if #part == 0 then
      break
    end
    if not known then
      void_counts(part, left)
    end
    for j = #part, 1, -1 do
      local id = part[j]
      off = off + 1
      if id ~= READY_MARKER then
        local c = left[id] or 0
        if c > 0 then
          left[id] = c - 1
          if not touched[id] then
            touched[id] = true
            touched[#touched + 1] = id
          end
          skipped = skipped + 1
          if skipped >= SKIP_MAX then
            break
          end
        else
          got = got + 1
          ids[got] = id
          live = live + 1
          k = k - 1
          if k == 0 then
            break
          end
        end
      end
    end
    if #part < w then
      break -- the list's head: nothing more to read
    end
    -- The next window: what is still wanted, grown by the share of dead
    -- copies met so far (doubling while none was live), so that little is
    -- read past the last id taken.
    w = live > 0 and math.ceil(k * off / live) or 2 * w
    w = math.min(math.max(w, k), SKIP_MAX)
  end
  if off > 0 then
    redis.call('LTRIM', K.ready, 0, -(off + 1))
  end
  if skipped > 0 then
    if total - skipped <= 0 then
      redis.call('DEL', K.void)
    else
      local gone, counts = {}, {'', fmt(total - skipped)}
      for _, id in ipairs(touched) do
        if left[id] > 0 then
          push(counts, id, fmt(left[id]))
        else
          gone[#gone + 1] = id
        end
      end
      if #gone > 0 then
        redis.call('HDEL', K.void, unpack(gone))
      end
      redis.call('HSET', K.void, unpack(counts))
    end
  end
  return got, skipped >= SKIP_MAX
end

argc(3)
local p = load_policy()
local now = now_ms(p)
local n = int_arg(1, 'count', 1, LIMITS.batch)
local lease = int_arg(2, 'lease_ms', 0, POLICY_MAX.lease_ms)
local reserve = bool_arg(3, 'reserve')
if lease == 0 then
  lease = p.lease_ms
end
local deadline = now + lease
local out = {deadline, 0}
local BUSY_WAIT_MS, PAUSE_WAIT_MS = 100, 250
-- Whether ready events wait, at any level: the wake marker is in the ready
-- list only while prio holds events (ready.lua), so it never makes this true.
local function waiting()
  return on('ZCARD', K.prio) > 0 or on('LLEN', K.ready) > 0
end
if p.paused == 1 then
  -- Paused (configure paused 1): nothing is handed out; everything else goes on.
  if waiting() then
    out[2] = PAUSE_WAIT_MS
  end
  return out
end
-- INCRBY below fails on a seq Redis does not take as an integer (leading
-- zeros too); refuse before the pop, or the popped ids would be lost with the
-- error. Tokens must also stay exact as Lua doubles (below 2^53) to fence,
-- with room for one batch (LIMITS.batch tokens) above seq or the floor.
local seq = on('GET', K.seq)
if seq and not (string.match(seq, '^0$') or (string.match(seq, '^[1-9]%d*$') and
    tonumber(seq) <= 9007199254740991 - LIMITS.batch)) then
  fail(E.CORRUPT_STATE, 'fencing counter ' .. K.seq .. ' is not a whole number below 2^53')
end
-- The clock floor makes a token unique across rollbacks of seq (a restore
-- from an older snapshot, a promoted replica): any token handed out before
-- is below now_ms * 1000 unless more than 1000 were issued per ms. Checked
-- before the pop like seq: an error after it would lose the popped ids.
local floor = now * 1000
if floor > 9007199254740991 - LIMITS.batch then
  fail(E.CORRUPT_STATE, 'the clock (' .. fmt(now) .. ' ms) is beyond the token range')
end
-- The limits: how many of the n asked for may go out now (reads only: the
-- log's trim comes with its first write, after the pop). A room of -1: no limit.
local asked, busy_room, rate_room, used = n, -1, -1, 0
if p.concurrency > 0 then
  busy_room = math.max(p.concurrency - redis.call('ZCARD', K.leases), 0)
  n = math.min(n, busy_room)
end
local window_start = now - p.rate_window_ms
if p.rate_limit > 0 then
  used = redis.call('ZCOUNT', K.starts, '(' .. fmt(window_start), '+inf')
  rate_room = math.max(p.rate_limit - used, 0)
  n = math.min(n, rate_room)
end
-- The wait when ready events stay behind: the later next free slot of the
-- limits this call filled. The rate's is known exactly: when enough starts
-- have left the window for one more (the oldest, unless the limit was
-- lowered below what the window holds); a lease may end at any time.
local function held_back()
  if n >= asked or not waiting() then
    return 0
  end
  local wait = 0
  if busy_room >= 0 and busy_room <= n then
    local first = redis.call('ZRANGE', K.leases, 0, 0, 'WITHSCORES')
    wait = BUSY_WAIT_MS
    if first[2] then
      wait = math.min(tonumber(first[2]) - now, BUSY_WAIT_MS)
    end
  end
  if rate_room >= 0 and rate_room <= n then
    local oldest = redis.call('ZRANGEBYSCORE', K.starts, '(' .. fmt(window_start), '+inf',
      'WITHSCORES', 'LIMIT', math.max(used - p.rate_limit, 0), 1)
    if oldest[2] then
      wait = math.max(wait, tonumber(oldest[2]) + p.rate_window_ms - now)
    end
  end
  return math.max(wait, 1)
end
if n == 0 then
  out[2] = held_back()
  return out
end
-- Dead copies of cancelled events in the ready list (cancel_event leaves a
-- ready level-0 event's id there, counted in void): one HGET of their total,
-- nil in the common case (no void key). Before any write: it checks void's
-- type, and a total someone overwrote is refused before the pops.
local void_total = on('HGET', K.void, '')
if void_total and not string.match(void_total, '^%d+$') then
  fail(E.CORRUPT_STATE, 'the count of dead copies in ' .. K.void .. ' is not a whole number')
end
-- Every read that can fail has happened above; from the pop on, each id
-- ends up leased or dead-lettered, never dropped. Levels above 0 first: one
-- ZCARD when none waits (the common case), else LLEN (ready's type checked
-- before the ZPOPMIN writes) and the pops.
local ids, got, skip_stopped = {}, 0, false
-- Up to k more ids from the ready list's tail. The wake marker (ready.lua)
-- is no event: dropped, never delivered; it is at most one, at the tail, so
-- the batch is refilled once for it.
local function take(k)
  local popped = on('RPOP', K.ready, k)
  if not popped then
    return false
  end
  local marker = false
  for _, id in ipairs(popped) do
    if id == READY_MARKER then
      marker = true
    else
      got = got + 1
      ids[got] = id
    end
  end
  return marker
end
if on('ZCARD', K.prio) > 0 then
  local rest = on('LLEN', K.ready)
  local popped = redis.call('ZPOPMIN', K.prio, n)
  for j = 1, #popped, 2 do
    got = got + 1
    ids[got] = popped[j]
  end
  if got < n and rest > 0 then
    if void_total then
      got, skip_stopped = take_live(ids, got, n - got, void_total)
    elseif take(n - got) and got < n and rest > 1 then
      take(n - got)
    end
  end
  drop_marker()
elseif void_total then
  got, skip_stopped = take_live(ids, got, n, void_total)
elseif take(n) and got < n then
  take(n - got)
end
if got == 0 then
  -- Stopped at the bound with dead copies still ahead: ask again at once
  -- (a worker would otherwise wait for a push that may never come).
  if skip_stopped and redis.call('LLEN', K.ready) > 0 then
    out[2] = 1
  end
  return out
end
local zargs, margs, leased, sargs = {}, {}, {}, {}
-- One HMGET per hash and one seq write for the batch instead of three calls
-- per event. The records are read as texts (meta_texts) and rewritten by
-- joining them (meta_join): no record table and no number formatted but the
-- token (and a charged attempt above 1), per event. The first token is known
-- before the loop (the larger of seq and the clock floor); seq is written
-- after it, moved by exactly the tokens handed out (untouched if none is).
local raws = meta_raw_many(ids)
local envs = redis.call('HMGET', K.data, unpack(ids))
-- A token's digits: consecutive tokens share all but their last digit, so
-- the rest is formatted once per ten (string.format was a sixth of the loop's
-- time per event).
local DIGITS = {'0', '1', '2', '3', '4', '5', '6', '7', '8', '9'}
local tens, tens_text = -1, ''
local function token_text(t)
  local hi = math.floor(t / 10)
  if hi == 0 then
    return DIGITS[t + 1]
  end
  if hi ~= tens then
    tens, tens_text = hi, fmt(hi)
  end
  return tens_text .. DIGITS[t - hi * 10 + 1]
end
local last = tonumber(seq or '0')
local token = last < floor and floor or last
local k = 0
-- Per event: plain index writes into the arrays (push's varargs cost more
-- than the rest of the loop).
local no, nz = #out, 0
for i, id in ipairs(ids) do
  local env, born = data_env(envs[i])
  local s, a, _, c, ret, ext, reason, canon
  if raws[i] then
    s, a, _, c, ret, ext, reason, canon = meta_texts(raws[i])
  elseif env then
    -- No record, a payload: enqueued ready, never delivered (fresh.lua). Its
    -- record is this lease's, created when the prefix says (now for a value
    -- without one, written by someone else: it is delivered all the same,
    -- and a consumer that cannot decode it dead-letters it).
    born = born or fmt(now)
    s, a, c, ret, ext, reason = 'r', '0', born, '0', '', ''
    canon = #born < 16 and (#born == 1 or string.byte(born, 1) ~= 48)
  end
  if s == 'r' and env and not leased[id] then
    leased[id] = true
    k = k + 1
    token = token + 1
    local tok = token_text(token)
    local rec
    if canon then
      local returns = ret == '0' and 0 or tonumber(ret)
      local attempt, start = a == '0' and 1 or tonumber(a) + 1, 0
      if not reserve or returns >= p.max_attempts then
        rec = meta_join('l', a == '0' and '1' or fmt(attempt), tok, c, ret, ext, reason)
      else
        -- Reserved: the reply names the attempt this delivery becomes if run.
        rec = meta_join('v', a, tok, c, ret, ext, reason)
        start = returns > 0 and 1 or 0
      end
      out[no + 1], out[no + 2], out[no + 3], out[no + 4], out[no + 5] =
        id, token, attempt, env, start
    else
      -- A number not in meta_str's form (a leading zero, 16 digits or
      -- more): through the record's table, which writes the one stored form.
      local m = meta_parse(raws[i]) or fresh_record(born)
      local attempt, start = m.attempt + 1, 0
      if not reserve or m.returns >= p.max_attempts then
        m.attempt, m.s = attempt, 'l'
      else
        m.s = 'v'
        start = m.returns > 0 and 1 or 0
      end
      m.token = token
      rec = meta_str(m)
      out[no + 1], out[no + 2], out[no + 3], out[no + 4], out[no + 5] =
        id, token, attempt, env, start
    end
    no = no + 5
    zargs[nz + 1], zargs[nz + 2] = deadline, id
    if p.rate_limit > 0 then
      -- The starts log exists only under a rate limit.
      sargs[nz + 1], sargs[nz + 2] = now, tok
    end
    margs[nz + 1], margs[nz + 2] = id, rec
    nz = nz + 2
  elseif leased[id] then
    -- A stray second copy in this batch: the record is written after the
    -- loop, so it still reads 'r' here and must not be leased twice.
    count('orphaned', 1)
  else
    -- Rare paths: read the record again, as an earlier copy of the same id
    -- in this batch may just have dead-lettered it.
    local m = meta_get(id)
    if m and m.s == 'r' then
      to_dead(id, m, 'payload missing', now)
    elseif m then
      -- A stray copy of an id that is tracked elsewhere (leased, timer...).
      count('orphaned', 1)
    else
      quarantine(id, m, now)
    end
  end
end
if k > 0 then
  if last < floor then
    redis.call('SET', K.seq, fmt(floor + k))
  else
    redis.call('INCRBY', K.seq, k)
  end
end
if #zargs > 0 then
  redis.call('ZADD', K.leases, unpack(zargs))
  meta_put_texts(margs)
  count('delivered', #zargs / 2)
  if p.rate_limit > 0 then
    -- Starts that left the window go first: the log keeps at most rate_limit.
    redis.call('ZREMRANGEBYSCORE', K.starts, '-inf', fmt(window_start))
    redis.call('ZADD', K.starts, unpack(sargs))
    used = used + #sargs / 2
  end
end
out[2] = held_back()
return out
