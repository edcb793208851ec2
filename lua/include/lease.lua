-- lease: the checks and moves every lease call shares (start, extend,
-- release, complete, fail).
--@include record

-- Why a call on record m with token must be refused, as a per-item error
-- code; nil when m is the live lease of that token (reserved or started).
local function refusal(m, token)
  if m == nil then
    return E.UNKNOWN_EVENT
  elseif m == false then
    return E.CORRUPT_STATE
  elseif not holds(m, token) then
    return E.STALE_LEASE
  end
  return nil
end
