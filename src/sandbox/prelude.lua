-- prelude.lua: runs once in every sandbox, before any peerlet code, while the
-- original library functions are still at hand. It replaces what a peerlet
-- could abuse with wrappers that hold the host's bounds, and returns the
-- factory for host functions that suspend the calling upcall.
--
-- MARK is a table only this file and the host hold: a yield whose first value
-- is MARK is a host call travelling up to the host, never a script's yield.
local MARK, host = ...

-- Everything the wrappers call is captured here: a script may replace the
-- globals, and a wrapper calling a script's `pcall` would hand it the raw
-- C function.
local rawequal, rawget, error, type, select, tostring = rawequal, rawget, error, type, select, tostring
local pcall, table_concat = pcall, table.concat
local math_tointeger, maxinteger = math.tointeger, math.maxinteger
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_running, co_isyieldable, co_close =
  coroutine.status, coroutine.running, coroutine.isyieldable, coroutine.close
local raw_xpcall, raw_setmetatable = xpcall, setmetatable
local upcalls = host.upcall_threads   -- weak set of the host's upcall threads
local charge, killed, aborted = host.charge_coroutine, host.killed, host.aborted
local flags, note_resume = host.flags, host.note_resume   -- see budget.rs

local function is_upcall(co)
  return co ~= nil and rawget(upcalls, co) ~= nil
end

-- Coroutines: a host call made inside a script coroutine yields MARK; each
-- resumer passes it up to the host and hands the reply back down.

local function after_resume(co, ok, first, ...)
  if ok and rawequal(first, MARK) then
    return after_resume(co, co_resume(co, co_yield(MARK, ...)))
  end
  return ok, first, ...
end

local function after_wrapped(co, ok, ...)
  if ok then
    if rawequal((...), MARK) then
      return after_wrapped(co, co_resume(co, co_yield(MARK, select(2, ...))))
    end
    return ...
  end
  error((...), 0)
end

local coroutine = {}

function coroutine.create(f)
  charge()
  return co_create(f)
end

function coroutine.resume(co, ...)
  if is_upcall(co) then error("cannot resume the upcall's own thread", 2) end
  if flags.killed then note_resume(co) end
  return after_resume(co, co_resume(co, ...))
end

function coroutine.wrap(f)
  local co = coroutine.create(f)
  return function(...)
    if flags.killed then note_resume(co) end
    return after_wrapped(co, co_resume(co, ...))
  end
end

function coroutine.yield(...)
  if is_upcall(co_running()) then error("attempt to yield from outside a coroutine", 2) end
  return co_yield(...)
end

function coroutine.running()
  local co = co_running()
  return co, is_upcall(co)
end

function coroutine.isyieldable(co)
  co = co or co_running()
  if is_upcall(co) then return false end
  return co_isyieldable(co)
end

function coroutine.status(co)
  return co_status(co)
end

function coroutine.close(co)
  if is_upcall(co) then error("cannot close the upcall's own thread", 2) end
  if type(co) == "thread" and aborted(co) then
    return false, "coroutine was aborted by the sandbox"
  end
  return co_close(co)
end

_G.coroutine = coroutine

-- Error handlers never run once the budget is spent: Lua calls them with
-- hooks off when the error comes from the hook.
function _G.xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    error("bad argument #2 to 'xpcall' (function expected, got " .. type(handler) .. ")", 2)
  end
  return raw_xpcall(f, function(e)
    if killed() then return e end
    return handler(e)
  end, ...)
end

-- No finalizers, to-be-closed handlers or weak tables: finalizers run with
-- hooks off, and the others are traps of the same kind (see mod.rs).
-- Every metatable is remembered (weakly), so the budget can defuse `__close`
-- handlers added later (see budget.rs).
local metatables, rawset = host.metatables, rawset
function _G.setmetatable(t, mt)
  if mt ~= nil then
    host.check_metatable(mt)
    if type(mt) == "table" then rawset(metatables, mt, true) end
  end
  return raw_setmetatable(t, mt)
end

-- Logging goes to the node's log with the peerlet's name.
function _G.print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  host.log("info", table_concat(parts, "\t"))
end

function _G.warn(...)
  host.log("warn", table_concat({ ... }))
end

function _G.collectgarbage(opt)
  if opt == "count" then return host.memory_kib() end
  error("collectgarbage: only \"count\" is available to peerlets", 2)
end

-- Strings: bounds before C calls the hook cannot interrupt.
local string = string
local raw_rep, raw_format = string.rep, string.format
local raw_find, raw_match, raw_gmatch, raw_gsub = string.find, string.match, string.gmatch, string.gsub
local check_rep, check_format, check_pattern = host.check_rep, host.check_format, host.check_pattern

-- A wrapped C function's error carries no position (Lua takes it from the
-- caller, here `pcall`); give it the peerlet's line. Errors raised by
-- script callbacks (a gsub function, a metamethod) keep their own.
local function rethrow(ok, ...)
  if ok then return ... end
  local e = ...
  if type(e) == "string" and not raw_find(e, "^[^:\n]*:%d+: ") then error(e, 2) end
  error(e, 0)
end

function string.rep(s, n, sep)
  check_rep(s, n, sep)
  return rethrow(pcall(raw_rep, s, n, sep))
end

function string.format(fmt, ...)
  check_format(fmt, ...)
  return rethrow(pcall(raw_format, fmt, ...))
end

function string.find(s, p, init, plain)
  if not plain then check_pattern("find", s, p) end
  return rethrow(pcall(raw_find, s, p, init, plain))
end

function string.match(s, p, init)
  check_pattern("match", s, p)
  return rethrow(pcall(raw_match, s, p, init))
end

function string.gmatch(s, p, init)
  check_pattern("gmatch", s, p)
  return rethrow(pcall(raw_gmatch, s, p, init))
end

function string.gsub(s, p, repl, n)
  check_pattern("gsub", s, p)
  return rethrow(pcall(raw_gsub, s, p, repl, n))
end

string.dump = nil

-- Tables: C loops whose length a metamethod controls are redone in Lua,
-- where the instruction budget sees them.
local table = table
local raw_concat, raw_unpack, raw_sort = table.concat, table.unpack, table.sort
local check_concat, check_unpack, check_sort = host.check_concat, host.check_unpack, host.check_sort

local function int_arg(v, n, fname)
  local i = math_tointeger(v)
  if i == nil then
    error("bad argument #" .. n .. " to '" .. fname .. "' (number has no integer representation)", 3)
  end
  return i
end

local function table_arg(t, fname)
  if type(t) ~= "table" then
    error("bad argument #1 to '" .. fname .. "' (table expected, got " .. type(t) .. ")", 3)
  end
end

function table.insert(t, ...)
  table_arg(t, "insert")
  local e = #t + 1
  local nargs = select("#", ...)
  if nargs == 1 then
    t[e] = ...
    return
  end
  if nargs ~= 2 then error("wrong number of arguments to 'insert'", 2) end
  local pos, v = ...
  pos = int_arg(pos, 2, "insert")
  if pos < 1 or pos > e then error("bad argument #2 to 'insert' (position out of bounds)", 2) end
  for i = e, pos + 1, -1 do t[i] = t[i - 1] end
  t[pos] = v
end

function table.remove(t, pos)
  table_arg(t, "remove")
  local size = #t
  if pos == nil then pos = size else pos = int_arg(pos, 2, "remove") end
  if pos ~= size and (pos < 1 or pos > size + 1) then
    error("bad argument #2 to 'remove' (position out of bounds)", 2)
  end
  local v = t[pos]
  while pos < size do
    t[pos] = t[pos + 1]
    pos = pos + 1
  end
  t[pos] = nil
  return v
end

function table.move(a1, f, e, t, a2)
  table_arg(a1, "move")
  if a2 == nil then a2 = a1 end
  f, e, t = int_arg(f, 2, "move"), int_arg(e, 3, "move"), int_arg(t, 4, "move")
  if e >= f then
    if not (f > 0 or e < maxinteger + f) then error("bad argument #3 to 'move' (too many elements to move)", 2) end
    local n = e - f
    if t > maxinteger - n then error("bad argument #4 to 'move' (destination wrap around)", 2) end
    if t > e or t <= f or not rawequal(a1, a2) then
      for i = 0, n do a2[t + i] = a1[f + i] end
    else
      for i = n, 0, -1 do a2[t + i] = a1[f + i] end
    end
  end
  return a2
end

function table.concat(t, sep, i, j)
  check_concat(t, sep, i, j)
  return rethrow(pcall(raw_concat, t, sep, i, j))
end

function table.unpack(t, i, j)
  i = i or 1
  if j == nil then j = #t end
  check_unpack(i, j)
  return rethrow(pcall(raw_unpack, t, i, j))
end

function table.sort(t, cmp)
  check_sort(t)
  return rethrow(pcall(raw_sort, t, cmp))
end

-- The string metatable's __index is the `string` table above; hide the
-- metatable itself so no script can change what every string does.
local string_meta = getmetatable("")
string_meta.__metatable = false

-- Host functions that suspend the upcall: `prepare` (Rust) checks the
-- arguments and returns the request; the reply comes back as MARK, ok, ...
local function finish(m, ok, ...)
  if not rawequal(m, MARK) then
    error("host call interrupted: its coroutine was resumed by the script", 2)
  end
  if not ok then error((...), 2) end
  return ...
end

return function(prepare)
  return function(...)
    return finish(co_yield(MARK, prepare(...)))
  end
end
