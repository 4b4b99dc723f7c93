-- (Lua names the variable in these messages, "(local 'x')"; the VM here
-- cannot, so the lines print the part both say.)
local function fails(f, text) local ok, e = pcall(f) return ok, (e:match(text)) end
print(5 & 3, 5 | 3, 5 ~ 3, ~5, ~0, 3.0 | 0)
print(fails(function() return "12" & 4 end, "bitwise operation on a string value"))
print(fails(function() local x = math.huge return x | x end, "has no integer representation"))
print(fails(function() local x = 1.5 return ~x end, "has no integer representation"))
print(fails(function() local t = {} return t & 1 end, "bitwise operation on a table value"))
local mt = {__band = function(a, b) return "band" end, __bnot = function(a, b) return rawequal(a, b) end}
local t = setmetatable({}, mt)
print(t & 1, 1 & t, ~t)
print(0xFF ~ 0x0F, -1 >> 60, 1 << 62 | 1)
