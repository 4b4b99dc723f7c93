-- Number formatting in tostring and concatenation, math.
print(tostring(1e20), tostring(2.0), tostring(0.1), tostring(-0.0), tostring(1/0), tostring(123456789012345678))
print(1e20 .. "|" .. 2.0 .. "|" .. 0.1 .. "|" .. 1e100 .. "|" .. 3 .. "|" .. 2^53)
print(math.floor(2.5), math.max(1, 2.5), 7 // 2.0, 7 % 3, -7 % 3, 7.5 % 2, math.huge, -math.huge, math.pi)
print(10 / 2, 3 * 1.0, 2^0.5, math.sqrt(16), math.abs(-3), math.tointeger and math.tointeger(3.0))
print(string.len("héllo"), #"héllo")
print(type(print), tostring(nil), tostring(true))
local mt = {__concat = function(a, b) return "cat" end, __tostring = function() return "OBJ" end}
local o = setmetatable({}, mt)
print(o .. "x", "x" .. o, tostring(o))
print((pcall(function() return {} .. "x" end)))
print("free: " .. 5e9 .. " bytes", "n=" .. 3 .. ", f=" .. 2.5)
