--@peerlet name=directory type=end-node version=1
-- peerlets/directory.lua: yellow pages. A category of service ("printers",
-- "mirrors/debian") maps to the providers that offer it.
--
-- The list of a category lives at the root of kbr.key(category), so each
-- category has one place everybody finds without a central server. Entries
-- are soft state: a provider registers with a time-to-live and must
-- register again before it runs out, or the entry disappears. A provider
-- that crashes is forgotten by itself, with nobody telling the directory.
--
-- From the REPL of a node that runs it (by name, or by its app id):
--   d = peerlet.lookup(kbr.key("printers"), "directory")
--   d:register("printers", "lpr://10.0.0.7", 60)   --> true  (listed for 60 s)
--   d:find("printers")                 --> {"lpr://10.0.0.7"}
--   d:unregister("printers", "lpr://10.0.0.7")     --> true
-- A provider keeps itself listed with a timer in its own peerlet:
--   timer.every(30, function() d:register("printers", me, 60) end)
-- The root copies each list, numbered, to the next R-1 nodes: when it
-- fails, the next node is the root and has the list; a node that joins in
-- front of it as the new root gets the list from it.
local P = {}

local DEFAULT_TTL = 60  -- seconds
local MAX_TTL = 3600
local MAX_PROVIDERS = 100  -- per category
local R = 3  -- copies of each list

local clock, pairs, type, kbr = clock, pairs, type, kbr

-- category -> {provider -> time it expires}
local categories = {}
local versions = {}  -- category -> version of our copy of its list

-- A list as it travels: seconds left, not our clock's times.
local function copy_of(category)
  local left, now = {}, clock.now()
  for provider, until_ in pairs(categories[category] or {}) do left[provider] = until_ - now end
  return { op = "copy", category = category, ver = versions[category], left = left }
end

local function replicas(category)
  return kbr.replica_set(kbr.key(category), R)
end

-- The root sends its copy to the other replicas; a replica sends its copy
-- to the root (it may be a new root that has none yet). The higher version wins.
local function spread(category)
  local set, msg = replicas(category), copy_of(category)
  if set[1] and set[1].id == kbr.id().id then
    for i = 2, #set do kbr.send(set[i], msg) end
  else
    kbr.route(kbr.key(category), msg)  -- to the root, which may have joined just now
  end
end

local function changed(category)
  versions[category] = (versions[category] or 0) + 1
  spread(category)
end

local function check(category, provider)
  assert(type(category) == "string", "directory: a category is a string")
  assert(provider == nil or type(provider) == "string",
         "directory: a provider is a string (an address, a URL, a name)")
end

-- Forgets the providers of `category` whose time ran out.
local function expire(category)
  local list = categories[category]
  if not list then return end
  local now = clock.now()
  local left = false
  for provider, until_ in pairs(list) do
    if until_ <= now then list[provider] = nil else left = true end
  end
  if not left then categories[category] = nil end
end

function P.register(category, provider, ttl)
  check(category, provider)
  ttl = math.min(math.max(tonumber(ttl) or DEFAULT_TTL, 1), MAX_TTL)
  expire(category)
  local list = categories[category] or {}
  if not list[provider] then
    local n = 0
    for _ in pairs(list) do n = n + 1 end
    if n >= MAX_PROVIDERS then
      return nil, "category " .. category .. " is full (" .. MAX_PROVIDERS .. " providers)"
    end
  end
  list[provider] = clock.now() + ttl
  categories[category] = list
  changed(category)
  return true
end

function P.unregister(category, provider)
  check(category, provider)
  local list = categories[category]
  if not list or not list[provider] then return false end
  list[provider] = nil
  expire(category)
  changed(category)
  return true
end

-- The providers of `category` still listed, sorted.
function P.find(category)
  check(category)
  expire(category)
  local out = {}
  for provider in pairs(categories[category] or {}) do out[#out + 1] = provider end
  table.sort(out)
  return out
end

-- The categories listed at this node (as their root or a replica).
function P.categories()
  local out = {}
  for category in pairs(categories) do
    expire(category)
    if categories[category] then out[#out + 1] = category end
  end
  table.sort(out)
  return out
end

function P.deliver(key, msg, from)
  if type(msg) ~= "table" or msg.op ~= "copy" or type(msg.category) ~= "string"
     or math.type(msg.ver) ~= "integer" or type(msg.left) ~= "table" then return end
  if msg.ver <= (versions[msg.category] or 0) then return end
  local list, now = {}, clock.now()
  for provider, left in pairs(msg.left) do
    if type(provider) == "string" and type(left) == "number" then
      list[provider] = now + math.min(left, MAX_TTL)
    end
  end
  categories[msg.category], versions[msg.category] = list, msg.ver
  expire(msg.category)
end

local pending  -- the timer of the next spread, if one is due

function P.update(node, joined)
  -- The replica sets changed: copy every list held to where it belongs now.
  if pending then return end
  pending = timer.after(1, function()
    pending = nil
    for category in pairs(versions) do spread(category) end
  end)
end

function P.init()
  -- Sweep now and then, so a category nobody asks about still empties.
  timer.every(10, function()
    for category in pairs(categories) do expire(category) end
  end)
end

return P
