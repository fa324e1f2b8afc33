-- hostile: hides its runaway loops inside coroutines it makes itself, in the
-- hope that the instruction budget only watches the upcall's own thread.
-- expect: the budget counts every coroutine's instructions; deliver() and
--         forward() are each aborted; the node goes on.
local P = {}

-- A coroutine that makes a coroutine that loops.
function P.deliver(key, msg, from)
  local outer = coroutine.wrap(function()
    local inner = coroutine.wrap(function()
      while true do end
    end)
    inner()
  end)
  outer()
end

-- A generator that never runs dry: each step is short and yields back, so
-- only the sum of all steps is unbounded.
function P.forward(key, msg, next_hop)
  local numbers = coroutine.wrap(function()
    local n = 0
    while true do
      n = n + 1
      coroutine.yield(n)
    end
  end)
  for _ in numbers do end
end

return P
