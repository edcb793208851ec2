--[[
@script progress
@version 2
@memory level
@summary A consumer records how far it got with an event it holds: a whole
percentage 0..100, fenced by its lease token like complete, kept in the
event's record (field q) so that status and the dashboard show it and it
goes when the record goes (nothing to clean up). It is kept across a retry
or a snooze (the last value reported) and overwritten by the next report.
@key data unguarded: HEXISTS (lease.lua fresh_exists) only when a record is absent, before any write
@key meta
@arg id id event id
@arg token token the lease token of the caller
@arg value whole(0..100) progress in percent
@return value(int) the progress now stored
@error INVALID_ARGUMENT
@error UNKNOWN_EVENT
@error STALE_LEASE
@error CORRUPT_STATE
]]
--@include base
--@include lease

argc(3)
local id = ARGV[1]
local value = int_arg(3, 'value', 0, 100)
local m = held(id, ARGV[2])
if meta_ext(m, 'q') ~= value then
  meta_ext_set(m, 'q', value)
  meta_put(id, m)
end
return value
