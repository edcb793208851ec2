-- lease: the checks and moves every lease call shares (start, extend,
-- release, complete, fail).
--@include record

-- Whether id, which has no record, is an event all the same: enqueued
-- ready and never delivered (fresh.lua), its payload is all there is. A
-- token call on it is stale (it holds no lease), not about an unknown event.
-- Only the refusals read it (through on(): before any write).
--@cold
local function fresh_exists(id)
  return on('HEXISTS', K.data, id) == 1
end

-- Why a call on record m of id with token must be refused, as a per-item
-- error code; nil when m is the live lease of that token (reserved or
-- started).
local function refusal(m, token, id)
  if m == nil then
    if fresh_exists(id) then
      return E.STALE_LEASE
    end
    return E.UNKNOWN_EVENT
  elseif m == false then
    return E.CORRUPT_STATE
  elseif not holds(m, token) then
    return E.STALE_LEASE
  end
  return nil
end

-- The record of id when the token (its text as sent) holds its live lease;
-- otherwise the call is refused (UNKNOWN_EVENT, CORRUPT_STATE, STALE_LEASE)
-- before it writes anything. The single-event calls (fail, snooze, progress)
-- share it.
local function held(id, token)
  local m = meta_get(id)
  local code = refusal(m, tonumber(token), id)
  if code == E.UNKNOWN_EVENT then
    fail(code, 'no event ' .. id)
  elseif code == E.CORRUPT_STATE then
    fail(code, 'record of ' .. id .. ' is unreadable')
  elseif code then
    fail(code, 'token ' .. tostring(token) .. ' is not the current lease of ' .. id)
  end
  return m
end
