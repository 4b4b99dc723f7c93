-- A string indexes the string library (Lua's string metatable).
local s = "abc"
print(s.len == string.len, ("x").rep == string.rep, ("x").rep("y", 3))
print(s.upper(s), s.sub(s, 2), s.len(s))
local t = { len = 7, sub = "field" }
t.len = 8
print(t.len, t.sub)
local u = setmetatable({}, { __index = function(_, k) return k .. "!" end })
print(u.sub, u.len, u.other)
print(pcall(function() return (nil).len end))
