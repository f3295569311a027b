-- Applies one write batch atomically: every check must pass, then deletes,
-- sets (ttl > 0: expire after ttl seconds; ttl < 0: keep the key's expiry),
-- set additions (ttl > 0 restarts the set's expiry) and removals, and at
-- most one PUBLISH. Every string key written is added to the key directory
-- (ARGV[2], a sorted set read by prefix scans), every deleted key removed.
-- Returns {status, key}.
local op = cjson.decode(ARGV[1])
local dir = ARGV[2]
for _, c in ipairs(op.checks) do
  if c.cond == 'absent' then
    if redis.call('EXISTS', c.key) == 1 then return {'conflict', c.key} end
  elseif c.cond == 'present' then
    if redis.call('EXISTS', c.key) == 0 then return {'missing', c.key} end
  elseif c.cond == 'equals' then
    if redis.call('GET', c.key) ~= c.value then return {'changed', c.key} end
  elseif c.cond == 'members' then
    local m = redis.call('SMEMBERS', c.key)
    table.sort(m)
    if table.concat(m, '\n') ~= c.value then return {'changed', c.key} end
  end
end
for _, k in ipairs(op.del) do
  redis.call('DEL', k)
  redis.call('ZREM', dir, k)
end
for _, kv in ipairs(op.set) do
  if kv[3] > 0 then
    redis.call('SET', kv[1], kv[2], 'EX', kv[3])
  elseif kv[3] < 0 then
    redis.call('SET', kv[1], kv[2], 'KEEPTTL')
  else
    redis.call('SET', kv[1], kv[2])
  end
  redis.call('ZADD', dir, 0, kv[1])
end
for _, kv in ipairs(op.sadd) do
  redis.call('SADD', kv[1], kv[2])
  if kv[3] > 0 then redis.call('EXPIRE', kv[1], kv[3]) end
end
for _, kv in ipairs(op.srem) do redis.call('SREM', kv[1], kv[2]) end
if op.event ~= '' then redis.call('PUBLISH', op.channel, op.event) end
return {'ok', ''}
