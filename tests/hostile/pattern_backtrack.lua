-- hostile: one string.gsub whose pattern backtracks for hours inside a single
-- C call, where the instruction hook never fires.
-- expect: refused before it runs ("pattern too complex"), in bounded time;
--         the node's other work is not starved.
local P = {}

function P.deliver(key, msg, from)
  local subject = ("ab"):rep(40000)
  local pattern = ("(.-)b"):rep(30) .. "$"
  return (subject:gsub(pattern, "%1"))
end

return P
