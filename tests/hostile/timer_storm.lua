-- hostile: timers that re-arm themselves with no delay, each callback also
-- calling host functions that fail (every failure is an error the host
-- builds), and a deliver() that starts more of them.
-- expect: timer delays of at least a millisecond, at most a few hundred
--         callbacks a second, and the peerlet's share of the node over
--         time; the node keeps routing, answering its console and stops
--         when told.
local P = {}

local function fail_a_little()
  for _ = 1, 50 do
    pcall(kbr.send, nil, nil)
    pcall(timer.cancel, "not a timer")
  end
end

local function storm()
  fail_a_little()
  pcall(timer.after, 0, storm)
end

function P.init()
  for _ = 1, 8 do
    timer.after(0, storm)
  end
end

function P.deliver(key, msg, from)
  pcall(timer.after, 0, storm)
end

return P
