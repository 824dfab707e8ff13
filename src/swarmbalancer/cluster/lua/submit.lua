-- submit.lua: a client's batch of new tasks, in one atomic step (docs/distributed.md).
--
-- KEYS[1] seq    integer: the last submission sequence number given out
-- KEYS[2] tasks  hash: task id -> row (JSON)
-- KEYS[3] idem   hash: idempotency key -> task id
-- KEYS[4] inbox  list: ids of submitted tasks the leader has not taken (RPUSH here, LPOP there)
-- ARGV[i]        a row from `cluster.rows.new_row`: state waiting, `"seq":0,` right after "id"
--
-- For each row: when its "key" is already in `idem`, no new row: the answer is that task's id;
-- else INCR seq, write the seq into the row (a splice of the text: the payload is never
-- re-encoded, so its numbers keep their digits), HSET tasks, HSET idem when keyed, RPUSH inbox.
-- Returns a flat array, two items per row: the id the row stands for, then a code:
--    1 created;  0 a task with the row's key exists (the id is that task's);
--   -1 the row's id is already in `tasks` (row refused, the others still accepted);
--   -2 the row is malformed (not a JSON object with a string id and the seq placeholder).

local seq_key, tasks_key, idem_key, inbox_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local out = {}
local ids = {}

for i = 1, #ARGV do
  local row = ARGV[i]
  local ok, t = pcall(cjson.decode, row)
  local at = string.find(row, '"seq":0,', 1, true)
  if not ok or type(t) ~= 'table' or type(t.id) ~= 'string' or not at then
    out[#out + 1] = (ok and type(t) == 'table' and type(t.id) == 'string') and t.id or ''
    out[#out + 1] = -2
  else
    local key = t.key
    local existing = false
    if type(key) == 'string' then
      existing = redis.call('HGET', idem_key, key)
    end
    if existing then
      out[#out + 1] = existing
      out[#out + 1] = 0
    elseif redis.call('HEXISTS', tasks_key, t.id) == 1 then
      out[#out + 1] = t.id
      out[#out + 1] = -1
    else
      local seq = redis.call('INCR', seq_key)
      row = string.sub(row, 1, at - 1) .. '"seq":' .. string.format('%d', seq) .. ','
        .. string.sub(row, at + 8)
      redis.call('HSET', tasks_key, t.id, row)
      if type(key) == 'string' then
        redis.call('HSET', idem_key, key, t.id)
      end
      ids[#ids + 1] = t.id
      out[#out + 1] = t.id
      out[#out + 1] = 1
    end
  end
end

-- RPUSH in slices: unpack() of a very long table would overflow Lua's C stack
for first = 1, #ids, 1000 do
  redis.call('RPUSH', inbox_key, unpack(ids, first, math.min(first + 999, #ids)))
end
return out
