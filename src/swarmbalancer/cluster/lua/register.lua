-- register.lua: a worker's life as an agent of the swarm: register, beat, drain, deregister
-- (docs/distributed.md). Times are Redis TIME (Unix seconds), so machines' clocks never matter.
--
-- KEYS[1] agents  hash: agent id -> registration (JSON: id, capacity, region, weight, cost,
--                 speed_hint, host, pid, draining)
-- KEYS[2] beats   hash: agent id -> Unix time of its last heartbeat
-- KEYS[3] events  list: {"event": "register"|"drain"|"deregister", "agent": id} for the leader
-- KEYS[4] ready   list: ready:<agent>, leases handed to this worker and not taken yet
-- ARGV[1]         agent id
-- ARGV[2]         action: register | beat | drain | deregister
-- ARGV[3]         registration JSON (register, drain)
-- ARGV[4]         seconds (register): another process's registration of the same id whose last
--                 beat is younger than this is alive: the register is refused
--
-- register:   HSET agents, beats; RPUSH a register event. Returns 1, or {0, seconds since that
--             beat} when a live process (another host or pid) holds the id.
-- beat:       HSET beats when the agent is registered. Returns 1, or 0 when `agents` does not
--             hold it (e.g. the server restarted without its data): the worker registers again.
-- drain:      HSET agents (draining: true), beats; RPUSH a drain event: the leader leases no
--             more to it. Returns 1.
-- deregister: when ready:<agent> is empty: HDEL agents, beats; RPUSH a deregister event; returns
--             an empty array. Otherwise takes every entry off the list and returns them, without
--             deregistering: the worker runs them, reports, then deregisters again.

local agents_key, beats_key, events_key, ready_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local agent, action = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)

local function event(name)
  redis.call('RPUSH', events_key, cjson.encode({event = name, agent = agent}))
end

if action == 'beat' then
  if redis.call('HEXISTS', agents_key, agent) == 0 then
    return 0
  end
  redis.call('HSET', beats_key, agent, stamp)
  return 1
elseif action == 'register' then
  local held = redis.call('HGET', agents_key, agent)
  local beat = tonumber(redis.call('HGET', beats_key, agent) or '')
  if held and beat and now - beat < tonumber(ARGV[4]) then
    local ok, old = pcall(cjson.decode, held)
    local mine = cjson.decode(ARGV[3])
    if not ok or type(old) ~= 'table' or old.host ~= mine.host or old.pid ~= mine.pid then
      return {0, string.format('%.3f', now - beat)}
    end
  end
  redis.call('HSET', agents_key, agent, ARGV[3])
  redis.call('HSET', beats_key, agent, stamp)
  event('register')
  return 1
elseif action == 'drain' then
  redis.call('HSET', agents_key, agent, ARGV[3])
  redis.call('HSET', beats_key, agent, stamp)
  event('drain')
  return 1
elseif action == 'deregister' then
  local left = redis.call('LRANGE', ready_key, 0, -1)
  if #left > 0 then
    redis.call('DEL', ready_key)
    return left
  end
  redis.call('HDEL', agents_key, agent)
  redis.call('HDEL', beats_key, agent)
  event('deregister')
  return {}
end
return redis.error_reply('register.lua: unknown action ' .. tostring(action))
