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
-- ARGV[2]  the caller's epoch (from takeover.lua)
-- ARGV[3]  the new leases, one per line ("\n"): "<agent id> <lease id> <entry JSON>". Agent
--          ids and lease ids hold no space or newline, compact JSON no raw newline. The entry
--          is the ready entry of the wire formats, {"task", "lease", "attempt", "payload",
--          "deadline", "timeout"}, written with "task" first, so the task id is read with a
--          pattern; an id with a quote or a backslash in it is read by decoding the entry.
-- ARGV[4]  lease ids to revoke (HDEL), one per line
-- ARGV[5]  agent ids whose ready list to void (DEL) first, one per line
-- ARGV[6]  outcomes the leader discarded (no attempt waited for them): HINCRBY late_results
-- ARGV[7]  prefetched entries to take back, one per line: "<agent id> <entry JSON>" (LREM of
--          that exact entry from ready:<agent>; one the worker took already is not there, and
--          its lease, revoked in ARGV[4], makes its report late). May be absent.
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
local epoch = ARGV[2]
local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #'leader')
local STEP = 500 -- values per command: few calls, well within Lua's stack

local find, sub = string.find, string.sub

-- the lines of a text, in order (plain finds: Lua's pattern matcher walks a batch of tens of
-- kilobytes char by char)
local function lines(text)
  local out, at, size = {}, 1, #text
  while at <= size do
    local stop = find(text, '\n', at, true) or size + 1
    if stop > at then
      out[#out + 1] = sub(text, at, stop - 1)
    end
    at = stop + 1
  end
  return out
end

for _, agent in ipairs(lines(ARGV[5])) do
  redis.call('DEL', prefix .. 'ready:' .. agent)
end
local held, ready, order = {}, {}, {}
local text = ARGV[3]
local at, size = 1, #text
while at <= size do
  local stop = find(text, '\n', at, true) or size + 1
  local space = find(text, ' ', at, true)
  local space2 = space and find(text, ' ', space + 1, true)
  if space2 and space2 < stop then
    local agent, lease = sub(text, at, space - 1), sub(text, space + 1, space2 - 1)
    local entry = sub(text, space2 + 1, stop - 1)
    local task = string.match(entry, '^{"task":"([^"\\]*)"')
    if not task then
      task = cjson.decode(entry).task
    end
    held[#held + 1] = lease
    held[#held + 1] = agent .. ' ' .. task .. ' ' .. epoch
    local list = ready[agent]
    if not list then
      list = {}
      ready[agent] = list
      order[#order + 1] = agent
    end
    list[#list + 1] = entry
  end
  at = stop + 1
end
for j = 1, #held, 2 * STEP do
  redis.call('HSET', KEYS[2], unpack(held, j, math.min(j + 2 * STEP - 1, #held)))
end
for _, agent in ipairs(order) do
  local list = ready[agent]
  for j = 1, #list, STEP do
    redis.call('RPUSH', prefix .. 'ready:' .. agent, unpack(list, j, math.min(j + STEP - 1, #list)))
  end
end
local revoked = lines(ARGV[4])
for j = 1, #revoked, STEP do
  redis.call('HDEL', KEYS[2], unpack(revoked, j, math.min(j + STEP - 1, #revoked)))
end
for line in string.gmatch(ARGV[7] or '', '[^\n]+') do
  local agent, entry = string.match(line, '^(%S+) (.*)$')
  if agent then
    redis.call('LREM', prefix .. 'ready:' .. agent, 1, entry)
  end
end
local late = tonumber(ARGV[6])
if late > 0 then
  redis.call('HINCRBY', KEYS[3], 'late_results', late)
end
return #held / 2
