local a, b, c = "2", " 3e0 ", " 10  "
print(a + b, -b, b + "2", "10" - c, c % a, a ^ b, math.type(a + a), math.type(a * b))
local i, j = math.maxinteger, 1
print(i + j == math.mininteger, -math.mininteger == math.mininteger, i * 2)
local x, y = 7, 2
print(x / y, x ^ y, x - y, -x, -(x + 0.5))
local V = {}
V.__index = V
V.__add = function(p, q) return setmetatable({v = p.v + q.v}, V) end
V.__unm = function(p) return setmetatable({v = -p.v}, V) end
V.__mul = function(p, k) return "mul " .. tostring(k) end
local p, q = setmetatable({v = 1}, V), setmetatable({v = 2}, V)
local k = 3
print((p + q).v, (-p).v, p * k)
print(pcall(function() return ({}) + ({}) end))
print(pcall(function() local s, t = "x", tonumber("1") return s + t end))
