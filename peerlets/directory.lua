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
local P = {}

local DEFAULT_TTL = 60  -- seconds
local MAX_TTL = 3600
local MAX_PROVIDERS = 100  -- per category

local clock, pairs, type = clock, pairs, type

-- category -> {provider -> time it expires}
local categories = {}

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
  return true
end

function P.unregister(category, provider)
  check(category, provider)
  local list = categories[category]
  if not list or not list[provider] then return false end
  list[provider] = nil
  expire(category)
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

-- The categories listed at this node (the ones whose root it is).
function P.categories()
  local out = {}
  for category in pairs(categories) do
    expire(category)
    if categories[category] then out[#out + 1] = category end
  end
  table.sort(out)
  return out
end

function P.init()
  -- Sweep now and then, so a category nobody asks about still empties.
  timer.every(10, function()
    for category in pairs(categories) do expire(category) end
  end)
end

return P
