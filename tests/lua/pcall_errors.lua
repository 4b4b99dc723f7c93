-- Errors caught by pcall carry Lua's position and description of the
-- operand for arithmetic, concatenation, bitwise operators and
-- comparisons; strings convert for arithmetic as in Lua (to an integer
-- where they read as one), and tables with metamethods meet numbers.
local up
print(pcall(function() local n; return n + 1 end))
print(pcall(function() local t = {}; return t[1] + 1 end))
print(pcall(function() local t = {}; local k = "x"; return t[k] + 1 end))
print(pcall(function() return up + 1 end))
print(pcall(function() return glob .. "x" end))
print(pcall(function() local t = {a = {}}; return t.a.b * 2 end))
print(pcall(function() local t = {}; return t["s"] - 1 end))
print(pcall(function() local s; return "a" .. s .. "b" end))
print(pcall(function() local s; return s .. "a" .. "b" end))
print(pcall(function() local x; return 1 & x end))
print(pcall(function() local x = {}; return x // 1 end))
print(pcall(function() return math.foo + 1 end))
print(pcall(function() local a; return -a end))
print(pcall(function(p) return p + 1 end))
print(pcall(function() local a, b = {}, 1; return a < b end))
print(pcall(function() return "abc" + 1 end))
local s = "10"
print(s + 1, s * 2, -s, 2 ^ s, s / 4, math.type(s + 1), math.type(-s))
local mt = {__add = function(a, b) return "added" end, __unm = function() return "negated" end,
            __concat = function(a, b) return "joined" end, __lt = function() return true end}
local t = setmetatable({}, mt)
print(1 + t, t + 1, -t, t .. 1, 1 .. t, 1 < t, t < 1)
print(coroutine.wrap(function() return 1 + setmetatable({}, {__add = function(a, b)
  coroutine.yield("in __add") return 7 end}) end)())
