-- hostile: every deliver() works through most of its instruction budget and
-- returns in time, so no upcall is ever aborted; sent a message every
-- millisecond, it would keep the node's thread busy for good.
-- expect: no abort and no report for any single upcall; over time the
--         peerlet gets its share of the node (a quarter of a second each
--         second) and its further messages wait; the node keeps routing and
--         answering everyone else.
local P = {}
local total = 0

function P.deliver(key, msg, from)
  local n = 0
  for i = 1, 120000 do
    n = n + i % 7
  end
  total = total + n
end

function P.total()
  return total
end

return P
