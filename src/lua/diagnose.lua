-- Checked operations for a diagnosis run (see front/checks.rs): each
-- raises Lua 5.4's error with its description of the value, marked with
-- "\1" so the caller knows the message is this file's. Loaded only into a
-- diagnosis instance, never where rules run.
local type, error, tonumber, getmetatable = type, error, tonumber, getmetatable
local MARK = "\1"

local function fail(what, v, desc)
  local suffix = ""
  if desc then suffix = " (" .. desc .. ")" end
  error(MARK .. what .. " a " .. type(v) .. " value" .. suffix, 0)
end

function __cm_obj(o, desc)
  local t = type(o)
  if t == "table" or t == "userdata" then return o end
  fail("attempt to index", o, desc)
end

function __cm_ix(o, k, desc)
  return __cm_obj(o, desc)[k]
end

function __cm_call(f, desc, ...)
  local t = type(f)
  if t == "function" then return f(...) end
  if (t == "table" or t == "userdata") and getmetatable(f) and getmetatable(f).__call then
    return f(...)
  end
  fail("attempt to call", f, desc)
end

function __cm_len(v, desc)
  local t = type(v)
  if t == "string" or t == "table" or t == "userdata" then return #v end
  fail("attempt to get length of", v, desc)
end

local arith = {
  ["+"] = function(a, b) return a + b end,
  ["-"] = function(a, b) return a - b end,
  ["*"] = function(a, b) return a * b end,
  ["/"] = function(a, b) return a / b end,
  ["^"] = function(a, b) return a ^ b end,
}
local function number_like(v)
  return type(v) == "number" or (type(v) == "string" and tonumber(v) ~= nil)
end
local function has_methods(v)
  local t = type(v)
  return t == "table" or t == "userdata"
end

function __cm_ar(op, a, b, da, db)
  if (number_like(a) and number_like(b)) or has_methods(a) or has_methods(b) then
    return arith[op](a, b)
  end
  -- As Lua: the first operand unless it is a number.
  if number_like(a) then fail("attempt to perform arithmetic on", b, db) end
  fail("attempt to perform arithmetic on", a, da)
end

local compare = {
  ["<"] = function(a, b) return a < b end,
  ["<="] = function(a, b) return a <= b end,
  [">"] = function(a, b) return a > b end,
  [">="] = function(a, b) return a >= b end,
}

function __cm_cmp(op, a, b)
  local ta, tb = type(a), type(b)
  if (ta == tb and (ta == "number" or ta == "string")) or has_methods(a) or has_methods(b) then
    return compare[op](a, b)
  end
  -- Lua turns `a > b` into `b < a`, and names the operands so.
  if op == ">" or op == ">=" then ta, tb = tb, ta end
  if ta == tb then error(MARK .. "attempt to compare two " .. ta .. " values", 0) end
  error(MARK .. "attempt to compare " .. ta .. " with " .. tb, 0)
end

function __cm_unm(a, da)
  if number_like(a) or has_methods(a) then return -a end
  fail("attempt to perform arithmetic on", a, da)
end

function __cm_concat(a, b, da, db)
  local function joinable(v) return type(v) == "string" or type(v) == "number" end
  if (joinable(a) and joinable(b)) or has_methods(a) or has_methods(b) then
    return __concat(a, b)
  end
  -- As Lua: the first operand unless it is a string or a number.
  if joinable(a) then fail("attempt to concatenate", b, db) end
  fail("attempt to concatenate", a, da)
end

function __cm_self(o, desc)
  local t = type(o)
  if t == "table" or t == "userdata" or t == "string" then return o end
  fail("attempt to index", o, desc)
end
