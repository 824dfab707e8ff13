-- submit.lua: a client's batch of new tasks, in one atomic step (docs/distributed.md).
--
-- KEYS[1] seq    integer: the last submission sequence number given out
-- KEYS[2] tasks  hash: task id -> row (JSON)
-- KEYS[3] idem   hash: idempotency key -> task id
-- KEYS[4] inbox  list: ids of submitted tasks the leader has not taken (RPUSH here, LPOP there)
-- ARGV[i]        a row from `cluster.rows.new_row`, whose text this script relies on: it
--                starts with {"id":<string>,"seq":0, and its first ,"key": is the top-level
--                idempotency key (a string or null); the payload comes after both
--
-- For each row: when its key is already in `idem`, no new row: the answer is that task's id;
-- else the next seq is written into the row (a splice of the text: the payload is never
-- decoded or re-encoded, so its numbers keep their digits), HSETNX tasks (an id already in use
-- refuses the row), HSET idem when keyed, RPUSH inbox; `seq` is advanced once per call.
-- Returns one JSON text (parsed once by the client, not element by element), an array of two
-- items per row: the id the row stands for, then a code:
--    1 created;  0 a task with the row's key exists (the id is that task's);
--   -1 the row's id is already in `tasks` (row refused, the others still accepted);
--   -2 the row is malformed (not of new_row's shape; the id is "" when unreadable).

local seq_key, tasks_key, idem_key, inbox_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- index of the quote closing the JSON string that opens at s[i], or nil
local function string_end(s, i)
  local j = i + 1
  while true do
    local k = string.find(s, '["\\]', j)
    if not k then return nil end
    if string.byte(s, k) == 34 then return k end  -- '"'
    j = k + 2
  end
end

-- the text of a JSON string token as a Lua string
local function unquote(token)
  if not string.find(token, '\\', 1, true) then
    return string.sub(token, 2, -2)
  end
  local ok, value = pcall(cjson.decode, token)
  return ok and value or nil
end

local seq = tonumber(redis.call('GET', seq_key) or '0')
local first_seq = seq
local parts = {}
local ids = {}

for i = 1, #ARGV do
  local row = ARGV[i]
  local close = string.sub(row, 1, 7) == '{"id":"' and string_end(row, 7)
  local id = close and unquote(string.sub(row, 7, close))
  local key, bad = nil, not id or string.sub(row, close + 1, close + 9) ~= ',"seq":0,'
  if not bad then
    local at = string.find(row, ',"key":', close, true)
    if not at then
      bad = true
    elseif string.byte(row, at + 7) == 34 then
      local key_end = string_end(row, at + 7)
      key = key_end and unquote(string.sub(row, at + 7, key_end))
      bad = not key
    elseif string.sub(row, at + 7, at + 10) ~= 'null' then
      bad = true
    end
  end
  if bad then
    parts[#parts + 1] = (id and cjson.encode(id) or '""') .. ',-2'
  else
    local existing = key and redis.call('HGET', idem_key, key)
    if existing then
      parts[#parts + 1] = cjson.encode(existing) .. ',0'
    else
      local text = string.sub(row, 1, close) .. ',"seq":' .. string.format('%d', seq + 1) .. ','
        .. string.sub(row, close + 10)
      if redis.call('HSETNX', tasks_key, id, text) == 1 then
        seq = seq + 1
        if key then
          redis.call('HSET', idem_key, key, id)
        end
        ids[#ids + 1] = id
        parts[#parts + 1] = string.sub(row, 7, close) .. ',1'
      else
        parts[#parts + 1] = string.sub(row, 7, close) .. ',-1'
      end
    end
  end
end

if seq ~= first_seq then
  redis.call('SET', seq_key, string.format('%d', seq))
end
-- RPUSH in slices: unpack() of a very long table would overflow Lua's C stack
for first = 1, #ids, 1000 do
  redis.call('RPUSH', inbox_key, unpack(ids, first, math.min(first + 999, #ids)))
end
return '[' .. table.concat(parts, ',') .. ']'
