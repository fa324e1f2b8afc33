--@peerlet name=dht type=end-node version=1
-- peerlets/dht.lua: a distributed hash table that keeps what it acknowledged.
--
-- Item `k` lives on its replica set: the root of kbr.key(k) and the R-1
-- nodes after it, kbr.replica_set(kbr.key(k), R).
--  * Any replica takes a put and passes it to the root, which numbers it
--    (the version), keeps it and copies it to the other replicas in turn:
--    the put is acknowledged once W copies are stored.
--  * Between two copies the higher version wins (ties: the higher id of the
--    root that numbered it), on every node, whatever order they arrive in.
--  * A get asks every replica and answers with the newest copy. R-W+1 of
--    them would meet any W copies of an acknowledged put while all nodes
--    see the same ring; under churn the W copies may sit one node off.
--  * Every SYNC seconds, and soon after a neighbour comes or goes, each node
--    compares digests of the items it is root of with its R-1 successors;
--    each side sends what the other lacks, SYNC_BYTES at most per round. A
--    node that joins in front of us pulls its items the same way, so a
--    handover that stops half way goes on next round from any replica left.
--  * remove() writes a tombstone (a newer version without a value), kept
--    GRACE seconds so that no old copy brings the item back.
--
-- From the REPL of a node that runs it:
--   dht = peerlet.lookup(kbr.key("colour"), "dht")
--   dht:put("colour", "blue")      --> 1             (the version written)
--   dht:put("colour", "red", 7)    --> 7             (an explicit version)
--   dht:put("colour", "old", 3)    --> nil  "stale version 3 (have 7)"
--   dht:get("colour")              --> "red"  7
--   dht:remove("colour")           --> true
-- Items live in this peerlet's store, so a copy outlives a node restart.
local P = {}

-- Every node of a ring must use the same settings (R decides who holds
-- what), so they are part of the code: edit them and sign your own build.
local R, W = 3, 2         -- copies of an item; copies before a put is acknowledged
local SYNC = 10           -- seconds between two digest comparisons
local SYNC_BYTES = 16384  -- bytes of items sent to one peer per round
local GRACE = 3600        -- seconds a tombstone is kept
local ASK = { timeout = 1.5 }  -- a replica's time to answer, before we try the next
-- The bytes a node keeps are bounded by its store quota (`--store-quota`).

local kbr, store, timer, clock, peerlet = kbr, store, timer, clock, peerlet
local ipairs, pairs, type, pcall, error, tonumber, tostring =
  ipairs, pairs, type, pcall, error, tonumber, tostring
local min, max, mtype, concat, sort = math.min, math.max, math.type, table.concat, table.sort

local pos = {}  -- item name -> kbr.key(name), for every item held here

local function bytes(v)  -- near enough for a quota and a round's budget
  if type(v) == "string" then return #v + 2 end
  if type(v) ~= "table" then return 9 end
  local n = 2
  for k, x in pairs(v) do n = n + bytes(k) + bytes(x) end
  return n
end

local function size(k, rec) return #k + bytes(rec.v) + 64 end

local function me() return kbr.id().id end

-- Whether copy `a` is newer than copy `b` (nil: no copy).
local function newer(a, b)
  if not b then return true end
  if a.ver ~= b.ver then return a.ver > b.ver end
  return (a.by or "") > (b.by or "")
end

-- Whether key `x` lies in (a, b] going round the ring (keys are 40 hex
-- digits, so string order is numeric order).
local function between(x, a, b)
  if a < b then return x > a and x <= b end
  return x > a or x <= b
end

local function is_key(s) return type(s) == "string" and #s == 40 end

local function check_name(k)
  if type(k) ~= "string" then error("dht: item names are strings", 3) end
end

-- The replica set of item `k`, root first, as this node sees the ring.
local function replicas(k)
  local set = kbr.replica_set(pos[k] or kbr.key(k), R)
  if #set == 0 and #kbr.neighbor_set(1) == 0 then return { kbr.id() } end
  return set
end

local function is_member(set)
  for _, n in ipairs(set) do if n.id == me() then return true end end
  return false
end

-- The replica set a write or read reaching this node uses. Routing or a
-- replica sent it here as to the root; if this node's view disagrees (it
-- just restarted and knows no predecessor yet), it serves as the root
-- anyway, with its own successors: copies land next to the key, where
-- repair finds them, rather than the call failing.
local function serving(k)
  local set = replicas(k)
  if is_member(set) then return set end
  set = kbr.replica_set(me(), R)
  return #set > 0 and set or { kbr.id() }
end

-- A copy as it travels: a tombstone carries its age, not our clock.
local function wire(rec)
  if rec.v ~= nil then return { v = rec.v, ver = rec.ver, by = rec.by } end
  return { ver = rec.ver, by = rec.by, age = max(0, clock.now() - (rec.rm or 0)) }
end

-- What a peer sends is checked, not trusted.
local function valid(rec)
  return type(rec) == "table" and mtype(rec.ver) == "integer"
    and (rec.by == nil or type(rec.by) == "string")
end

-- Keeps `rec` as this node's copy of `k` if it is newer than the one held.
-- Returns true, or false and why not.
local function keep(k, rec)
  if not valid(rec) then return false, "dht: not a copy" end
  local old = store.get(k)
  if old and not newer(rec, old) then return false, "stale" end
  local copy = { v = rec.v, ver = rec.ver, by = rec.by }
  if rec.v == nil then
    local age = type(rec.age) == "number" and max(0, rec.age) or 0
    if age > GRACE then return false, "dht: expired tombstone" end
    copy.rm = clock.now() - age
  end
  local ok, err = pcall(store.put, k, copy)  -- fails when the store is full
  if not ok then return false, "dht: " .. tostring(err) end
  pos[k] = pos[k] or kbr.key(k)
  return true
end

local function drop(k) store.remove(k); pos[k] = nil end

-- Sends the items `names` to `node`, 2 KB per message: each item the
-- receiver keeps is a store write, and one upcall should do few of them.
local function send_items(node, names)
  local items, n = {}, 0
  for i, k in ipairs(names) do
    local rec = store.get(k)
    if rec then
      items[#items + 1] = { k = k, rec = wire(rec) }
      n = n + size(k, rec)
    end
    if #items > 0 and (n >= 2048 or i == #names) then
      kbr.send(node, { op = "store", items = items })
      items, n = {}, 0
    end
  end
end

-- The root's side of a write (v == nil: a removal): number it, keep it,
-- then copy it to the other replicas in turn until W copies are stored;
-- the rest get theirs without waiting (repair covers a lost message).
local function write(k, v, version)
  local set, old = serving(k), store.get(k)
  local have = old and old.ver or 0
  if version and version <= have then
    return nil, "stale version " .. version .. " (have " .. have .. ")"
  end
  local rec = { v = v, ver = version or have + 1, by = me() }
  local ok, why = keep(k, rec)
  if not ok then return nil, why end
  local stored, need = 1, min(W, #set)
  for i = 2, #set do
    if stored >= need then
      kbr.send(set[i], { op = "store", items = { { k = k, rec = wire(rec) } } })
    else
      local called, kept, theirs = pcall(function()
        return peerlet.at(set[i], nil, ASK):copy(k, wire(rec))
      end)
      if called and kept then stored = stored + 1 end
      if called and valid(theirs) and newer(theirs, rec) then
        -- The root changed and missed a write: learn it; the caller retries.
        keep(k, theirs)
        return nil, "stale version " .. rec.ver .. " (have " .. theirs.ver .. ")"
      end
    end
  end
  if stored < need then return nil, "dht: only " .. stored .. " of " .. need .. " copies stored" end
  return rec.ver
end

-- A write reaching the root (or the node routing or a replica took for it).
function P.root_write(op, k, v, version)
  check_name(k)
  if op == "remove" then
    local old = store.get(k)
    if not old or old.v == nil then return false end
    local ver, why = write(k, nil)
    return ver and true, why
  end
  if v == nil then error("dht: put needs a value (remove() takes one away)", 2) end
  if version ~= nil and mtype(version) ~= "integer" then error("dht: versions are integers", 2) end
  return write(k, v, version)
end

-- The root of `k` as this node knows it; else (a replica after the second
-- knows no node before it) whichever node routing takes the key to.
local function root_of(k)
  local set = replicas(k)
  if set[1] then return peerlet.at(set[1]) end
  return peerlet.lookup(pos[k] or kbr.key(k))
end

-- Any replica takes a write; only the root numbers it, so it goes there.
local function via_root(op, k, v, version)
  check_name(k)
  if replicas(k)[1] and replicas(k)[1].id == me() then return P.root_write(op, k, v, version) end
  return root_of(k):root_write(op, k, v, version)
end

function P.put(k, v, version) return via_root("put", k, v, version) end

function P.remove(k) return via_root("remove", k) end

-- The root copies a write here: true once this node holds it, else false
-- and this node's own (newer) copy.
function P.copy(k, rec)
  check_name(k)
  if keep(k, rec) then return true end
  local mine = store.get(k)
  if mine and valid(rec) and mine.ver == rec.ver and mine.by == rec.by then return true end
  return false, mine and wire(mine)
end

function P.peek(k) check_name(k); return store.get(k) and wire(store.get(k)) end

-- A read at a replica: it asks the other replicas too; a newer copy
-- found on one is kept here (read repair).
function P.read(k)
  check_name(k)
  local set = serving(k)
  local best = store.get(k)
  for _, node in ipairs(set) do
    if node.id ~= me() then
      local ok, rec = pcall(function() return peerlet.at(node, nil, ASK):peek(k) end)
      if ok and valid(rec) and newer(rec, best) then best = rec; keep(k, rec) end
    end
  end
  if best then return best.v, best.ver end
end

function P.get(k)
  check_name(k)
  if is_member(replicas(k)) then return P.read(k) end
  return root_of(k):read(k)
end

-- The items held here with keys in (after, up_to], by digest bucket (the
-- last hex digit of the key: 16 buckets).
local function in_range(after, up_to)
  local buckets = {}
  for k, key in pairs(pos) do
    if between(key, after, up_to) then
      local b = tonumber(key:sub(-1), 16) + 1
      buckets[b] = buckets[b] or {}
      buckets[b][#buckets[b] + 1] = k
    end
  end
  for _, list in pairs(buckets) do sort(list) end
  return buckets
end

-- A bucket's digest: the hash of its items' names and versions.
local function digest(buckets)
  local sums = {}
  for b = 1, 16 do
    local lines = {}
    for _, k in ipairs(buckets[b] or {}) do
      local rec = store.get(k)
      lines[#lines + 1] = k .. "\0" .. rec.ver .. "\0" .. (rec.by or "")
    end
    sums[b] = #lines > 0 and kbr.key(concat(lines, "\n")) or ""
  end
  return sums
end

-- The root's digest of its range: answer with our versions in the buckets
-- that differ.
local function on_digest(msg, from)
  if type(msg.sums) ~= "table" then return end
  local buckets = in_range(msg.after, msg.up_to)
  local sums, differ, have, n = digest(buckets), {}, {}, 0
  for b = 1, 16 do
    if sums[b] ~= msg.sums[b] then
      differ[#differ + 1] = b
      for _, k in ipairs(buckets[b] or {}) do
        local rec = store.get(k)
        if n < SYNC_BYTES then have[k] = { rec.ver, rec.by } end
        n = n + #k + 56
      end
    end
  end
  if #differ > 0 then
    kbr.send(from, { op = "have", after = msg.after, up_to = msg.up_to, buckets = differ, items = have })
  end
end

-- A replica's versions: send what it lacks, ask for what it has newer.
local function on_have(msg, from)
  if type(msg.buckets) ~= "table" or type(msg.items) ~= "table" then return end
  local buckets, push, want, budget = in_range(msg.after, msg.up_to), {}, {}, SYNC_BYTES
  local function theirs(t) return type(t) == "table" and { ver = t[1], by = t[2] } or nil end
  for _, b in ipairs(msg.buckets) do
    for _, k in ipairs(buckets[b] or {}) do
      local t, rec = theirs(msg.items[k]), store.get(k)
      if budget > 0 and not (valid(t) and not newer(rec, t)) then
        push[#push + 1] = k
        budget = budget - size(k, rec)
      end
    end
  end
  for k, t in pairs(msg.items) do
    t = theirs(t)
    if type(k) == "string" and valid(t) and newer(t, store.get(k)) then want[#want + 1] = k end
  end
  send_items(from, push)
  if #want > 0 then sort(want); kbr.send(from, { op = "want", names = want }) end
end

local function on_want(msg, from)
  if type(msg.names) ~= "table" then return end
  local names, budget = {}, SYNC_BYTES
  for _, k in ipairs(msg.names) do
    local rec = type(k) == "string" and budget > 0 and store.get(k)
    if rec then names[#names + 1] = k; budget = budget - size(k, rec) end
  end
  send_items(from, names)
end

-- The root of (after, up_to] tells the nodes just past its replica set
-- (they held copies before nodes joined in front of them) to hand theirs
-- back: each copy is dropped once the root says it holds it.
local function on_past(msg, from)
  local items, budget = {}, SYNC_BYTES
  for _, list in pairs(in_range(msg.after, msg.up_to)) do
    for _, k in ipairs(list) do
      local rec = store.get(k)
      if budget > 0 then items[#items + 1] = { k = k, rec = wire(rec) } end
      budget = budget - size(k, rec)
    end
  end
  if #items == 0 then return end
  local ok, held = pcall(function() return peerlet.at(from):take(items) end)
  for _, k in ipairs(ok and type(held) == "table" and held or {}) do
    if type(k) == "string" and pos[k] then drop(k) end
  end
end

-- Copies handed back by a node past the replica set: returns the names
-- this node now holds at the same version or a newer one.
function P.take(items)
  local held = {}
  for _, item in ipairs(type(items) == "table" and items or {}) do
    if type(item) == "table" and type(item.k) == "string" and valid(item.rec) then
      keep(item.k, item.rec)
      local mine = store.get(item.k)
      if mine and not newer(item.rec, mine) then held[#held + 1] = item.k end
    end
  end
  return held
end

function P.deliver(key, msg, from)
  if type(msg) ~= "table" then return end
  if msg.op == "store" and type(msg.items) == "table" then
    for _, item in ipairs(msg.items) do
      if type(item) == "table" and type(item.k) == "string" then keep(item.k, item.rec) end
    end
  elseif msg.op ~= "want" and not (is_key(msg.after) and is_key(msg.up_to)) then return
  elseif msg.op == "digest" then on_digest(msg, from)
  elseif msg.op == "have" then on_have(msg, from)
  elseif msg.op == "want" then on_want(msg, from)
  elseif msg.op == "past" then on_past(msg, from)
  end
end

-- Forgets tombstones older than GRACE.
local function expire()
  local now = clock.now()
  for k in pairs(pos) do
    local rec = store.get(k)
    if rec.v == nil and (rec.rm or now + 1) > now then
      rec.rm = now  -- the node restarted, and its clock with it
      store.put(k, rec)
    elseif rec.v == nil and now - rec.rm > GRACE then
      drop(k)
    end
  end
end

-- One round: forget old tombstones, send the digest of the range this node
-- is root of to its R-1 successors, and "past" to the two after those.
local function round()
  expire()
  local after, up_to = kbr.range(kbr.id())
  if not after then return end
  local set = kbr.replica_set(me(), R + 2)
  local msg = { op = "digest", after = after, up_to = up_to, sums = digest(in_range(after, up_to)) }
  for i = 2, #set do
    kbr.send(set[i], i <= R and msg or { op = "past", after = after, up_to = up_to })
  end
end

function P.init()
  for _, k in ipairs(store.keys()) do pos[k] = kbr.key(k) end
  timer.every(SYNC, round)
end

local pending  -- the timer of the next early round, if one is due

function P.update(node, joined)
  -- Wait a moment: one change in the ring brings several updates.
  if not pending then pending = timer.after(1, function() pending = nil; round() end) end
end

return P
