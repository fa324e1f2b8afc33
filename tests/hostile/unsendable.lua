-- hostile: hands kbr.route values that cannot travel, each one built to hurt
-- the encoder: code, a thread, cycles, a very deep nest, a huge message,
-- keys that are not data.
-- expect: every route fails with an error to the peerlet (no crash, no hang)
--         and nothing reaches the wire; deliver() returns how many were
--         refused, which a sound host makes the number of values (7). Under
--         the default limits the huge message already fails to build, with
--         a memory error at this script's line.
local P = {}

local function ring_of_two()
  local a, b = {}, {}
  a.next, b.next = b, a
  return { start = a }
end

local function nest(depth)
  local top = {}
  local t = top
  for _ = 1, depth do
    t.inner = {}
    t = t.inner
  end
  return top
end

local function bulk(mib)
  local parts = {}
  for i = 1, mib do parts[i] = string.char(64 + i % 26):rep(1 << 20) end
  return { parts = parts }
end

function P.deliver(key, msg, from)
  local values = {
    { handler = tostring },
    { worker = coroutine.create(function() end) },
    ring_of_two(),
    nest(100000),
    bulk(64),
    { [{}] = "a table as a key" },
    { [print] = "a function as a key" },
  }
  local to = kbr.key("unsendable")
  local refused = 0
  for _, v in ipairs(values) do
    if not pcall(kbr.route, to, v) then refused = refused + 1 end
  end
  return refused
end

return P
