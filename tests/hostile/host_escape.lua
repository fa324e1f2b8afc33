-- hostile: reaches for the host around the sandbox: files, processes, the
-- environment, modules and native libraries, the debug library (to drop the
-- instruction hook or pull the raw C functions out of the sandbox's
-- wrappers), code loading and bytecode, the collector, and metatable tricks
-- (finalizers and close handlers run where the budget cannot stop them).
-- expect: every try fails; the marker file is never created; a sweep of
--         everything reachable from the globals and the string metatable
--         finds none of those functions. deliver() returns how many tries got
--         through (0 for a sound sandbox) and their names.
local P = {}
local MARKER = "/tmp/peerlet-hostile-corpus-escaped"

-- Function names that only exist outside a sandbox.
local FORBIDDEN = {
  open = true, popen = true, execute = true, exit = true, getenv = true,
  tmpname = true, loadlib = true, searchpath = true, require = true,
  getregistry = true, sethook = true, gethook = true, getupvalue = true,
  setupvalue = true, getlocal = true, upvalueid = true, dump = true,
  load = true, loadstring = true, dofile = true, loadfile = true,
}

-- Walks tables and their metatables from the globals; true if a function
-- under a forbidden name is reachable.
local function reachable_forbidden()
  local seen, todo = {}, { _G, getmetatable("") }
  while #todo > 0 do
    local t = table.remove(todo)
    if type(t) == "table" and not seen[t] then
      seen[t] = true
      todo[#todo + 1] = getmetatable(t)
      for k, v in next, t do
        if FORBIDDEN[k] and type(v) == "function" then return true end
        todo[#todo + 1] = v
      end
    end
  end
  return false
end

local tries = {
  file = function() io.open(MARKER, "w"):write("escaped") end,
  process = function() io.popen("touch " .. MARKER) end,
  shell = function() os.execute("touch " .. MARKER) end,
  environment = function() assert(os.getenv("HOME")) end,
  exit = function() os.exit(3) end,
  module = function() require("io") end,
  loaded = function() assert(package.loaded.os) end,
  native = function() package.loadlib("libc.so.6", "system") end,
  hook = function() debug.sethook() end,
  registry = function() assert(debug.getregistry()) end,
  raw_rep = function() assert(debug.getupvalue(string.rep, 1)) end,
  load = function() load("return 1")() end,
  loadstring = function() loadstring("return 1")() end,
  dofile = function() dofile("/dev/null") end,
  loadfile = function() assert(loadfile("/dev/null"))() end,
  dump = function() assert(string.dump(function() end)) end,
  dump_via_metatable = function() getmetatable("").__index.dump(function() end) end,
  collector = function() collectgarbage("stop") end,
  finalizer = function() setmetatable({}, { __gc = function() while true do end end }) end,
  close_handler = function()
    local guard <close> = setmetatable({}, { __close = function() while true do end end })
  end,
  weak_table = function() setmetatable({}, { __mode = "kv" }) end,
  hidden_global = function() assert(rawget(_G, "io") or rawget(_G, "os") or rawget(_G, "debug")) end,
  sweep = function() assert(reachable_forbidden()) end,
}

function P.deliver(key, msg, from)
  local reached = {}
  for name, try in pairs(tries) do
    if pcall(try) then reached[#reached + 1] = name end
  end
  table.sort(reached)
  return #reached, table.concat(reached, ", ")
end

return P
