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
-- ARGV[5]  the rows, one per line ("\n"; compact JSON never holds a raw newline): a kind
--          letter then the row, whose first field is "id": "o" open (waiting or running),
--          "f" finished (done or cancelled: ZADD finished), "d" dead (failed: ZADD dead)
-- ARGV[6]  "1" when this call may repeat one that ran already (the caller sent it again, its
--          reply lost on the network, or a write failed before it), else "0"
-- ARGV[7]  K, the number of idempotency pairs;  ARGV[8]  C, the number of client groups
-- then K pairs   (idempotency key, task id): HSETNX idem (new tasks' keys)
-- then C pairs   (client id, its reply entries one per line): RPUSH reply:<client>; an entry is
--                {"id", "state", "result", "error", "attempt"} (wire formats), "id" first. An
--                entry goes out only when its row entered finished or dead in this call: in a
--                call that may repeat another (ARGV[6]), an entry whose row was in finished or
--                dead already is not pushed, so no reply goes out twice.
--
-- Lines are split with plain finds (Lua's pattern matcher walks a batch char by char, and a
-- batch is tens of kilobytes).
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

local function flush_calls(command, key, values)
  for j = 1, #values, 2 * STEP do
    redis.call(command, key, unpack(values, j, math.min(j + 2 * STEP - 1, #values)))
  end
end

if ARGV[4] ~= '' then
  redis.call('SET', KEYS[6], ARGV[4])
end
-- The id a row or a reply entry starts with ({"id":"..."): read with a pattern, or decoded
-- when it holds a quote or a backslash.
local function id_of(text)
  return string.match(text, '^{"id":"([^"\\]*)"') or cjson.decode(text).id
end

local find, sub, byte = string.find, string.sub, string.byte

-- each line of a text, in order (plain finds: no pattern matching)
local function each_line(text, visit)
  local at, size = 1, #text
  while at <= size do
    local stop = find(text, '\n', at, true) or size + 1
    if stop > at then
      visit(at, stop - 1)
    end
    at = stop + 1
  end
end

local resent = ARGV[6] == '1'
local fields, done, failed, fresh = {}, {}, {}, {}
local F, D = byte('f'), byte('d')
local rows = ARGV[5]
each_line(rows, function(first, last)
  local kind, row = byte(rows, first), sub(rows, first + 1, last)
  local id = id_of(row)
  fields[#fields + 1] = id
  fields[#fields + 1] = row
  if kind == F or kind == D then
    local zset, list = finished, done
    if kind == D then
      zset, list = dead, failed
    end
    if resent then
      -- finished by this call, not by an earlier one this call repeats: its reply goes out
      fresh[id] = not redis.call('ZSCORE', zset, id)
    end
    list[#list + 1] = now
    list[#list + 1] = id
  end
end)
flush_calls('HSET', tasks, fields)
flush_calls('ZADD', finished, done)
flush_calls('ZADD', dead, failed)
local nkeys, ngroups = tonumber(ARGV[7]), tonumber(ARGV[8])
local i = 9
for _ = 1, nkeys do
  redis.call('HSETNX', idem, ARGV[i], ARGV[i + 1])
  i = i + 2
end
local prefix = sub(KEYS[1], 1, #KEYS[1] - #'leader')
local ttl = math.max(1, math.ceil(retention))
for _ = 1, ngroups do
  local key, text, entries = prefix .. 'reply:' .. ARGV[i], ARGV[i + 1], {}
  each_line(text, function(first, last)
    local entry = sub(text, first, last)
    if not resent or fresh[id_of(entry)] then
      entries[#entries + 1] = entry
    end
  end)
  for j = 1, #entries, STEP do
    redis.call('RPUSH', key, unpack(entries, j, math.min(j + STEP - 1, #entries)))
  end
  if #entries > 0 then
    redis.call('EXPIRE', key, ttl)
  end
  i = i + 2
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
