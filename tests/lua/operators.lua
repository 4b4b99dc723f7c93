local NaN = 0/0; print(NaN > 1, NaN >= NaN, 1 > NaN, NaN < 1, NaN <= NaN)
print(math.maxinteger == math.maxinteger + 0.0, math.maxinteger < math.maxinteger + 0.0)
local n = 1; print(2 ~= n + 1)
local a, b = -7, 2; print(a // b, a % b, 1 % math.huge, 7 // 0.0, -7 // 2.0)
local one, s = 1, 64; print(one << s, one >> -1, one << -1)
print(0xFFFFFFFFFFFFFFFF, 0x7fffffffffffffff, 0x1p4, 9223372036854775808)
for i = 1, 3.5 do print(math.type(i)) break end
local last; for i = 3, 1, -1 do last = i end print(last)
;
do ; end
local x <const> = 5; print(x)
print(pcall(function() for i = 1, 10, 0 do end end))
local t = setmetatable({}, {__lt = function(a, b) return true end, __le = function() return nil end})
print(t < t, t <= t, t > t)
print(pcall(function() local x, y = {}, 1; y = y + 0; return x < y end))
print(pcall(function() return 1 // 0 end))
print(pcall(function() return math.mininteger % -1 end))
local i = 3 if i>0 then print("gt") end while i>0 do i = i - 1 end print(i)
local x = 1
print(not(x <= 2))
local function f() return 1, 2 end
print(not(f()))
local function g() return(f()) end
print(g())
local t = setmetatable({}, {__le = function() return false end})
print(not(t <= t))
