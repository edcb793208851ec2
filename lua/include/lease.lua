-- lease: the checks and moves every lease call shares (start, extend,
-- release, complete, fail).
--@include record

-- Why a call on record m of id with token must be refused, as a per-item
-- error code; nil when m is the live lease of that token (reserved or
-- started). An id without a record whose payload is there is ready (never
-- delivered, see record.lua): it exists, it just holds no lease.
local function refusal(m, token, id)
  if m == nil then
    if redis.call('HEXISTS', K.data, id) == 1 then
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
