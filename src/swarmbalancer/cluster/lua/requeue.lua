-- requeue.lua: take dead letters back into the swarm, in one atomic step (docs/distributed.md).
--
-- KEYS[1] tasks     hash: task id -> row (JSON)
-- KEYS[2] dead      sorted set: id of a task that failed after its last retry -> Unix time
-- KEYS[3] inbox     list: ids of submitted tasks the leader has not taken
-- KEYS[4] finished  sorted set: finished task id -> Unix time (retention trimming)
-- KEYS[5] counters  hash: counter name -> integer (here: requeued)
-- ARGV[i]           task ids
--
-- For each id in `dead` whose row exists: the row goes back to state "waiting" with attempt 0
-- and error, result and finished_wall null (every other field, the payload included, is kept
-- byte for byte: the row's top-level fields are spliced, never decoded and re-encoded), the id
-- leaves `dead` and `finished` (so retention does not trim a live task's row) and is pushed to
-- `inbox` for the leader; `requeued` counts it. Ids not in `dead`, or without a row, are
-- skipped. Returns the ids requeued.

local tasks_key, dead_key, inbox_key, finished_key, counters_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local RESET = {state = '"waiting"', attempt = '0', error = 'null', result = 'null',
               finished_wall = 'null'}

local function skip_space(s, i)
  return string.find(s, '[^ \t\r\n]', i) or #s + 1
end

-- index of the quote closing the JSON string that opens at s[i]
local function string_end(s, i)
  local j = i + 1
  while true do
    local k = string.find(s, '["\\]', j)
    if not k then error('unterminated string') end
    if string.sub(s, k, k) == '"' then return k end
    j = k + 2
  end
end

-- index of the last character of the JSON value that starts at s[i]
local function value_end(s, i)
  local c = string.sub(s, i, i)
  if c == '"' then return string_end(s, i) end
  if c == '{' or c == '[' then
    local depth, j = 0, i
    while true do
      j = string.find(s, '[%[%]{}"]', j)
      if not j then error('unterminated value') end
      local d = string.sub(s, j, j)
      if d == '"' then
        j = string_end(s, j)
      elseif d == '{' or d == '[' then
        depth = depth + 1
      else
        depth = depth - 1
        if depth == 0 then return j end
      end
      j = j + 1
    end
  end
  local j = string.find(s, '[ \t\r\n,%]}]', i)
  if not j then error('unterminated value') end
  return j - 1
end

-- the row with the RESET fields replaced, the others copied as they are
local function reset(row)
  local parts = {'{'}
  local i = skip_space(row, 1)
  if string.sub(row, i, i) ~= '{' then error('not an object') end
  i = skip_space(row, i + 1)
  local first = true
  while string.sub(row, i, i) ~= '}' do
    local key_end = string_end(row, i)
    local raw_key = string.sub(row, i, key_end)
    local key = cjson.decode(raw_key)
    i = skip_space(row, key_end + 1)
    if string.sub(row, i, i) ~= ':' then error('missing colon') end
    i = skip_space(row, i + 1)
    local v_end = value_end(row, i)
    local value = RESET[key] or string.sub(row, i, v_end)
    if not first then parts[#parts + 1] = ',' end
    first = false
    parts[#parts + 1] = raw_key .. ':' .. value
    i = skip_space(row, v_end + 1)
    local c = string.sub(row, i, i)
    if c == ',' then
      i = skip_space(row, i + 1)
    elseif c ~= '}' then
      error('missing comma')
    end
  end
  parts[#parts + 1] = '}'
  return table.concat(parts)
end

local done = {}
for _, id in ipairs(ARGV) do
  if redis.call('ZSCORE', dead_key, id) then
    local row = redis.call('HGET', tasks_key, id)
    if row then
      local ok, fresh = pcall(reset, row)
      if ok then
        redis.call('HSET', tasks_key, id, fresh)
        redis.call('ZREM', dead_key, id)
        redis.call('ZREM', finished_key, id)
        redis.call('RPUSH', inbox_key, id)
        done[#done + 1] = id
      end
    end
  end
end
if #done > 0 then
  redis.call('HINCRBY', counters_key, 'requeued', #done)
end
return done
