-- flush.lua: the leader's journal write, one atomic step per flush (store/redis_store.py).
--
-- KEYS[1]  sb:{ID}:leader    string: the leader's token (fencing: nothing is written unless
--                            it still holds the caller's token)
-- KEYS[2]  sb:{ID}:tasks     hash: task id -> row (JSON, docs/distributed.md)
-- KEYS[3]  sb:{ID}:finished  zset: done and cancelled ids -> Unix time (Redis TIME) finished
-- KEYS[4]  sb:{ID}:dead      zset: failed ids (failed after their last retry) -> Unix time
-- KEYS[5]  sb:{ID}:idem      hash: idempotency key -> task id
-- KEYS[6]  sb:{ID}:report    string: the leader's latest report (JSON)
-- Also sb:{ID}:reply:<client> lists (RPUSH, then EXPIRE retention), built from the prefix of
-- KEYS[1]: legal as every key of a swarm shares one hash tag.
--
-- ARGV[1]  the caller's token
-- ARGV[2]  retention: seconds a finished row is kept (finished and dead alike)
-- ARGV[3]  trim: remove at most this many expired rows from each zset now (0: none)
-- ARGV[4]  the report JSON to store, or "" to leave it
-- ARGV[5]  "1" when this call may repeat one that ran already (the caller sent it again, its
--          reply lost on the network, or a write failed before it), else "0"
-- ARGV[6]  O, ARGV[7] F, ARGV[8] D: the numbers of open (waiting or running), finished (done
--          or cancelled: ZADD finished) and dead (failed: ZADD dead) rows
-- ARGV[9]  K, the number of idempotency pairs;  ARGV[10]  C, the number of client groups
-- then O, F and D pairs (task id, row), in that order: HSET tasks
-- then K pairs   (idempotency key, task id): HSETNX idem (new tasks' keys)
-- then C groups  (client id, E, E task ids, their E reply entries): RPUSH reply:<client>; an
--                entry is {"id", "state", "result", "error", "attempt"} (wire formats). An
--                entry goes out only when its row entered finished or dead in this call: in a
--                call that may repeat another (ARGV[5]), an entry whose row was in finished or
--                dead already is not pushed, so no reply goes out twice.
--
-- Rows and entries are arguments of their own, written straight from ARGV: the script makes
-- no string of them (Redis's Lua hashes every byte of every string a script makes, and
-- cutting a joined batch up cost more than the writes).
-- Trimming takes the oldest ids whose time is past retention from finished and from dead,
-- deletes their rows, and their idem entries when the key still names them. Returns the number
-- of rows trimmed. An error starting with LEASELOST when the lease is not the caller's.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASELOST flush: the leader lease is not held by this token')
end
local tasks, finished, dead, idem = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local retention, trim = tonumber(ARGV[2]), tonumber(ARGV[3])
local STEP = 500 -- fields per command: few calls, well within Lua's stack

-- ARGV[first..last] in commands of STEP values (width 1) or STEP pairs (width 2)
local function from_argv(command, key, first, last, width)
  for j = first, last, width * STEP do
    redis.call(command, key, unpack(ARGV, j, math.min(j + width * STEP - 1, last)))
  end
end

if ARGV[4] ~= '' then
  redis.call('SET', KEYS[6], ARGV[4])
end
local resent = ARGV[5] == '1'
local nopen, nfinished, ndead = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local nkeys, ngroups = tonumber(ARGV[9]), tonumber(ARGV[10])
local at = 11
local rows_end = at + 2 * (nopen + nfinished + ndead) - 1
local fresh = {}
-- ZADD the ids of the pairs from `first`, `count` of them, into `zset` at `now`
local function record(zset, first, count)
  local scored = {}
  for j = 0, count - 1 do
    local id = ARGV[first + 2 * j]
    if resent then
      -- finished by this call, not by an earlier one this call repeats: its reply goes out
      fresh[id] = not redis.call('ZSCORE', zset, id)
    end
    scored[#scored + 1] = now
    scored[#scored + 1] = id
  end
  for j = 1, #scored, 2 * STEP do
    redis.call('ZADD', zset, unpack(scored, j, math.min(j + 2 * STEP - 1, #scored)))
  end
end
record(finished, at + 2 * nopen, nfinished)
record(dead, at + 2 * (nopen + nfinished), ndead)
from_argv('HSET', tasks, at, rows_end, 2)
at = rows_end + 1
for _ = 1, nkeys do
  redis.call('HSETNX', idem, ARGV[at], ARGV[at + 1])
  at = at + 2
end
local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #'leader')
local ttl = math.max(1, math.ceil(retention))
for _ = 1, ngroups do
  local key, count = prefix .. 'reply:' .. ARGV[at], tonumber(ARGV[at + 1])
  local ids = at + 2
  local entries = ids + count
  local pushed = count
  if not resent then
    from_argv('RPUSH', key, entries, entries + count - 1, 1)
  else
    local kept = {}
    for j = 0, count - 1 do
      if fresh[ARGV[ids + j]] then
        kept[#kept + 1] = ARGV[entries + j]
      end
    end
    for j = 1, #kept, STEP do
      redis.call('RPUSH', key, unpack(kept, j, math.min(j + STEP - 1, #kept)))
    end
    pushed = #kept
  end
  if pushed > 0 then
    redis.call('EXPIRE', key, ttl)
  end
  at = entries + count
end
local trimmed = 0
if trim > 0 then
  for _, zset in ipairs({finished, dead}) do
    local ids = redis.call('ZRANGEBYSCORE', zset, '-inf', now - retention, 'LIMIT', 0, trim)
    for _, id in ipairs(ids) do
      local row = redis.call('HGET', tasks, id)
      -- rows are compact JSON written by the leader: "key":null means no idempotency key
      if row and not string.find(row, '"key":null', 1, true) then
        local ok, decoded = pcall(cjson.decode, row)
        if ok and type(decoded.key) == 'string' and redis.call('HGET', idem, decoded.key) == id then
          redis.call('HDEL', idem, decoded.key)
        end
      end
    end
    if #ids > 0 then
      for j = 1, #ids, STEP do
        local part = {unpack(ids, j, math.min(j + STEP - 1, #ids))}
        redis.call('HDEL', tasks, unpack(part))
        redis.call('ZREM', zset, unpack(part))
      end
    end
    trimmed = trimmed + #ids
  end
end
return trimmed
