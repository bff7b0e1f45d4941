-- fraudgate: one batch of messages against the windows every gateway node shares
-- (gateway/shared/redis_state.py). Run atomically by Redis, so N nodes count as one would.
--
-- ARGV[1]: the batch, MessagePack (one argument: packing and parsing stay in C):
--   {now, window, fan-out threshold, key prefix, campaign window, campaign min senders,
--    campaign min recipients,
--    velocity: {{sender key, destination key, bind key, recipient key}...}  ("" = not counted),
--    campaigns: {{sender key, recipient key, check 0/1, {anchor...}}...},
--    label claims: {{label, {anchor...}}...}}
-- Returns, MessagePack: {velocity: {{sender count, distinct, crossed 0/1, dest count, bind
--   count}...}, campaigns: {{senders, recipients, announce 0/1}...}, claims: {won 0/1...}}.
-- Anchors (64-bit band keys) travel as decimal strings: a Lua number would round them.
--
-- A velocity key is the hash of gateway.detect.velocity._Win: two fixed windows of `window`
-- seconds starting at the key's first message, the previous weighted by its overlap, the
-- current window's distinct recipients in a set capped one past the threshold. A key idle
-- two windows starts afresh; it expires then (set when its window starts, not at every use).
local batch = cmsgpack.unpack(ARGV[1])
local now, w, cap, pfx = batch[1], batch[2], batch[3], batch[4]
local cw, min_s, min_r = batch[5], batch[6], batch[7]
local ltl = 7 * 86400  -- a label's announcement is remembered as long as labels live

local function touch(k)
  local v = redis.call('HMGET', k, 's', 'c', 'p', 'pr', 'a')
  local s = tonumber(v[1])
  if s and now - s < w then
    return {s = s, c = tonumber(v[2]), p = tonumber(v[3]), pr = tonumber(v[4]), a = tonumber(v[5])}
  end
  local win = {s = now, c = 0, p = 0, pr = 0, a = 0, moved = true}
  if s and now - s < 2 * w then  -- the next window: the current one becomes the previous
    win.s, win.p = s + w, tonumber(v[2])
    win.pr = redis.call('SCARD', k .. ':r')
  end
  if s then redis.call('DEL', k .. ':r') end
  return win
end

local function weight(win)  -- within [0, 1], as the detector's (a node's clock behind)
  local x = 1.0 - (now - win.s) / w
  if x < 0 then return 0 end
  if x > 1 then return 1 end
  return x
end

local function ttl(win)  -- until the key would start afresh anyway, plus a margin
  return math.ceil(win.s + 2 * w - now) + 5
end

local function save(k, win)
  redis.call('HSET', k, 's', tostring(win.s), 'c', win.c, 'p', win.p, 'pr', win.pr, 'a', win.a)
  if win.moved then redis.call('EXPIRE', k, ttl(win)) end
end


local function count(k)
  local win = touch(k)
  win.c = win.c + 1
  save(k, win)
  return win.c + win.p * weight(win)
end

local out_v, out_c = {}, {}
for n, m in ipairs(batch[8]) do
  local sk, dk, mk, rh = m[1], m[2], m[3], m[4]
  local row = {0, 0, 0, 0, 0}
  if sk ~= '' then
    local k = pfx .. 'v:s:' .. sk
    local win = touch(k)
    win.c = win.c + 1
    local r = k .. ':r'
    local card = win.moved and 0 or redis.call('SCARD', r)
    if card <= cap then
      local added = redis.call('SADD', r, rh)
      if card == 0 and added == 1 then redis.call('EXPIRE', r, ttl(win)) end
      card = card + added
    end
    local wt = weight(win)
    local distinct = card + win.pr * wt
    if distinct > cap and win.a == 0 then
      win.a = 1
      row[3] = 1
    end
    save(k, win)
    row[1] = win.c + win.p * wt
    row[2] = distinct
  end
  if dk ~= '' then row[4] = count(pfx .. 'v:d:' .. dk) end
  if mk ~= '' then row[5] = count(pfx .. 'v:m:' .. mk) end
  out_v[n] = row
end

-- Campaigns: the distinct senders and recipients of a template as sets under the band keys of
-- its first signature, in buckets of `cw` seconds (the current and the previous bucket are
-- counted). Only the thresholds matter, so each set stops at its threshold and a count is
-- exact up to it. The first node to see both reached claims the announcement.
local b = math.floor(now / cw)
local cttl = math.ceil((b + 2) * cw - now) + 5  -- the bucket is read until the next one ends

local function add(key, member, limit)
  local card = redis.call('SCARD', key)
  if card < limit and redis.call('SADD', key, member) == 1 and card == 0 then
    redis.call('EXPIRE', key, cttl)
  end
end

local function union(keys, limit)  -- distinct members of the sets, counted up to `limit`
  return math.min(#redis.call('SUNION', unpack(keys)), limit)
end

for n, m in ipairs(batch[9]) do
  local sh, rh, check, anchors = m[1], m[2], m[3], m[4]
  local na = #anchors
  local sk, rk = {}, {}
  for j = 1, na do
    local a = anchors[j]
    local s1, r1 = pfx .. 'c:s:' .. b .. ':' .. a, pfx .. 'c:r:' .. b .. ':' .. a
    add(s1, sh, min_s)
    add(r1, rh, min_r)
    sk[#sk + 1], rk[#rk + 1] = s1, r1
    sk[#sk + 1] = pfx .. 'c:s:' .. (b - 1) .. ':' .. a
    rk[#rk + 1] = pfx .. 'c:r:' .. (b - 1) .. ':' .. a
  end
  local row = {0, 0, 0}
  if check == 1 and na > 0 then
    local s, r = union(sk, min_s), union(rk, min_r)
    row[1], row[2] = s, r
    if s >= min_s and r >= min_r then
      local claimed = false
      for j = 1, na do
        if redis.call('EXISTS', pfx .. 'c:a:' .. anchors[j]) == 1 then claimed = true break end
      end
      if not claimed then
        for j = 1, na do redis.call('SET', pfx .. 'c:a:' .. anchors[j], '1', 'EX', cttl) end
        row[3] = 1
      end
    end
  end
  out_c[n] = row
end

-- Labelled campaigns: each node may label its copy of a template (a block it learnt from); the
-- `labelled` announcement is claimed under the anchors, so one node makes it.
local out_l = {}
for n, claim in ipairs(batch[10]) do
  local kind, anchors = claim[1], claim[2]
  local claimed = false
  for j = 1, #anchors do
    if redis.call('EXISTS', pfx .. 'c:l:' .. kind .. ':' .. anchors[j]) == 1 then claimed = true end
  end
  if not claimed then
    for j = 1, #anchors do
      redis.call('SET', pfx .. 'c:l:' .. kind .. ':' .. anchors[j], '1', 'EX', ltl)
    end
  end
  out_l[n] = claimed and 0 or 1
end
return cmsgpack.pack({out_v, out_c, out_l})
