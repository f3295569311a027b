-- Applies one atomic write: every check must pass, then deletes, sets,
-- set membership changes and exactly one PUBLISH. Returns {status, key}.
local op = cjson.decode(ARGV[1])
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
for _, k in ipairs(op.del) do redis.call('DEL', k) end
for _, kv in ipairs(op.set) do redis.call('SET', kv[1], kv[2]) end
for _, kv in ipairs(op.setex) do redis.call('SET', kv[1], kv[2], 'EX', kv[3]) end
for _, kv in ipairs(op.sadd) do redis.call('SADD', kv[1], kv[2]) end
for _, kv in ipairs(op.srem) do redis.call('SREM', kv[1], kv[2]) end
redis.call('PUBLISH', op.channel, op.event)
return {'ok', ''}
