-- submit.lua: a client's batch of new tasks, in one atomic step (docs/distributed.md).
--
-- KEYS[1] seq    integer: the last submission sequence number given out
-- KEYS[2] tasks  hash: task id -> row (JSON)
-- KEYS[3] idem   hash: idempotency key -> task id
-- KEYS[4] inbox  list: ids of submitted tasks the leader has not taken (RPUSH here, LPOP there)
-- ARGV           triples, one per row: the task id; its idempotency key as "=" .. key, or ""
--                for none; the row's text after its first member, which `cluster.rows`
--                writes as {"seq":0 (`row_tail`: it starts with ,"id": and ends with }).
--                The id and key are the row's own (the client writes all three from one
--                task): the script never parses the row.
--
-- For each row: when its key is already in `idem` (or given to an earlier row of the call), no
-- new row: the answer is that task's id; when its id is already in `tasks` (or an earlier row
-- of the call), the row is refused; else the next seq is prefixed to the text ({"seq":N), the
-- row stored, its key recorded, its id pushed to `inbox`. `seq` is advanced once per call, and
-- each write is one command per batch (a command a row cost more than the rest of the row's
-- work, and Redis's Lua hashes every byte of every string it makes: no text is cut up here).
-- Returns an array: a string of one code per row, then the existing task's id of each "0":
--   "1" created;  "0" a task with the row's key exists (its id follows, in order);
--   "x" the row's id is already in `tasks` (row refused, the others still accepted);
--   "m" the row is malformed (its text does not start with ,"id":" and end with }).

local seq_key, tasks_key, idem_key, inbox_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local STEP = 1000 -- values per command: few calls, well within Lua's stack (unpack)
local sub, byte = string.sub, string.byte
local EQUALS, BRACE = byte('='), byte('}')

local count = math.floor(#ARGV / 3)
if count * 3 ~= #ARGV then
  return redis.error_reply('ERR submit: ARGV must be (id, key, row) triples')
end

-- one HMGET per STEP names: found[i] is the value of names[i] (false when absent)
local function lookup(key, names)
  local found = {}
  for j = 1, #names, STEP do
    local part = redis.call('HMGET', key, unpack(names, j, math.min(j + STEP - 1, #names)))
    for k = 1, #part do
      found[j + k - 1] = part[k]
    end
  end
  return found
end

local ids, keyed, keys = {}, {}, {}
for i = 1, count do
  ids[i] = ARGV[3 * i - 2]
  local k = ARGV[3 * i - 1]
  if byte(k, 1) == EQUALS then
    keyed[#keyed + 1] = i
    keys[#keys + 1] = sub(k, 2)
  end
end
local present = lookup(tasks_key, ids)
local known = {} -- row index -> the id its key already names
if #keys > 0 then
  local named = lookup(idem_key, keys)
  for j = 1, #keyed do
    known[keyed[j]] = {keys[j], named[j]}
  end
end

local seq = tonumber(redis.call('GET', seq_key) or '0')
local first_seq = seq
local codes, existing = {}, {}
local fields, pairs_, queued = {}, {}, {}
local seen, given = {}, {} -- ids stored and keys recorded by this call
for i = 1, count do
  local id, rest = ids[i], ARGV[3 * i]
  local keyinfo = known[i]
  local key = keyinfo and keyinfo[1]
  local holder = keyinfo and (keyinfo[2] or given[key])
  if sub(rest, 1, 7) ~= ',"id":"' or byte(rest, -1) ~= BRACE then
    codes[i] = 'm'
  elseif holder then
    codes[i] = '0'
    existing[#existing + 1] = holder
  elseif present[i] or seen[id] then
    codes[i] = 'x'
  else
    seq = seq + 1
    fields[#fields + 1] = id
    fields[#fields + 1] = '{"seq":' .. string.format('%d', seq) .. rest
    queued[#queued + 1] = id
    seen[id] = true
    if key then
      given[key] = id
      pairs_[#pairs_ + 1] = key
      pairs_[#pairs_ + 1] = id
    end
    codes[i] = '1'
  end
end

local function write(command, key, values, step)
  for j = 1, #values, step do
    redis.call(command, key, unpack(values, j, math.min(j + step - 1, #values)))
  end
end
write('HSET', tasks_key, fields, 2 * STEP)
write('HSET', idem_key, pairs_, 2 * STEP)
write('RPUSH', inbox_key, queued, STEP)
if seq ~= first_seq then
  redis.call('SET', seq_key, string.format('%d', seq))
end
local reply = {table.concat(codes)}
for j = 1, #existing do
  reply[j + 1] = existing[j]
end
return reply
