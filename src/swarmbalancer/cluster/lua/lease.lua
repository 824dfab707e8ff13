-- lease.lua: the leader's hand-outs in one atomic step: void the ready lists of workers it
-- gave up on, hand out new leases, revoke leases whose attempt ended without an outcome, take
-- back prefetched entries not taken yet, and count the outcomes it discarded. Fenced like every
-- leader write. Revocations come after the new leases: a lease handed out and revoked within
-- one hand-out ends revoked.
--
-- KEYS[1]  sb:{ID}:leader    string: the leader's token
-- KEYS[2]  sb:{ID}:leases    hash: lease id -> "<agent> <task> <epoch>" (report.lua checks it)
-- KEYS[3]  sb:{ID}:counters  hash: counter name -> integer (late_results)
-- Also sb:{ID}:ready:<agent> lists (DEL, RPUSH), built from the prefix of KEYS[1]: legal as
-- every key of a swarm shares one hash tag.
-- ARGV[1]  the caller's token
-- ARGV[2]  the caller's epoch (from takeover.lua; the lease values below carry it)
-- ARGV[3]  outcomes the leader discarded (no attempt waited for them): HINCRBY late_results
-- ARGV[4]  G, ARGV[5] R, ARGV[6] V, ARGV[7] W: the numbers of worker groups of new leases,
--          of leases to revoke, of ready lists to void and of entries to take back
-- then V agent ids whose ready list to void (DEL) first
-- then G groups, one per worker: its agent id, n, then n pairs (lease id, its value
--          "<agent> <task> <epoch>": HSET leases), then the n ready entries in order (RPUSH
--          ready:<agent>). An entry is the ready entry of the wire formats, {"task", "lease",
--          "attempt", "payload", "deadline", "timeout"}.
-- then R lease ids to revoke (HDEL)
-- then W pairs (agent id, entry JSON): prefetched entries to take back (LREM of that exact
--          entry from ready:<agent>; one the worker took already is not there, and its
--          lease, revoked above, makes its report late)
-- Every value is an argument of its own, written straight from ARGV (Redis's Lua hashes every
-- byte of every string a script makes: cutting a joined batch up cost more than the writes).
--
-- `leases` always holds one more field, "#hashtable" (LEASES_PIN in cluster/keys.py), whose
-- value is longer than hash-max-listpack-value (64 by default): Redis then keeps the hash as
-- a hash table, whose lookups cost the same however many leases it holds. Without it, a hash of
-- up to 512 small fields is a listpack, scanned from the start on every HGET, HSET and HDEL:
-- with a few hundred leases out, that scan was most of report.lua's time.
--
-- Returns the number of leases handed out; an error starting with LEASELOST (nothing done)
-- when the lease is not the caller's.
local PIN = 'pins this hash as a hash table: its value is longer than hash-max-listpack-value, '
  .. 'so lookups take constant time instead of scanning a listpack from its start (lease.lua) '
  .. '............................................................................................'
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASELOST lease: the leader lease is not held by this token')
end
redis.call('HSETNX', KEYS[2], '#hashtable', PIN)
local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #'leader')
local STEP = 500 -- values per command: few calls, well within Lua's stack

-- ARGV[first..last] as the arguments of commands of STEP values (width 1) or pairs (width 2)
local function from_argv(command, key, first, last, width)
  for j = first, last, width * STEP do
    redis.call(command, key, unpack(ARGV, j, math.min(j + width * STEP - 1, last)))
  end
end

local late = tonumber(ARGV[3])
local ngroups, nrevoked = tonumber(ARGV[4]), tonumber(ARGV[5])
local nvoided, nwithdrawn = tonumber(ARGV[6]), tonumber(ARGV[7])
local at = 8
for _ = 1, nvoided do
  redis.call('DEL', prefix .. 'ready:' .. ARGV[at])
  at = at + 1
end
local handed = 0
for _ = 1, ngroups do
  local agent, count = ARGV[at], tonumber(ARGV[at + 1])
  local entries = at + 2 + 2 * count
  from_argv('HSET', KEYS[2], at + 2, entries - 1, 2)
  from_argv('RPUSH', prefix .. 'ready:' .. agent, entries, entries + count - 1, 1)
  handed = handed + count
  at = entries + count
end
from_argv('HDEL', KEYS[2], at, at + nrevoked - 1, 1)
at = at + nrevoked
for _ = 1, nwithdrawn do
  redis.call('LREM', prefix .. 'ready:' .. ARGV[at], 1, ARGV[at + 1])
  at = at + 2
end
if late > 0 then
  redis.call('HINCRBY', KEYS[3], 'late_results', late)
end
return handed
