-- hostile: remote methods that keep their caller waiting: one yields in the
-- hope of being parked forever, the other loops.
-- expect: the caller's handle call fails with an error in bounded time
--         (yielding from an upcall is refused; the loop is aborted by the
--         budget); no call stays pending; neither node stalls.
local P = {}

function P.stall()
  repeat coroutine.yield("later") until false
end

function P.grind()
  local x = 0
  while true do x = (x * 31 + 7) % 1000003 end
end

return P
