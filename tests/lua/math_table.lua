-- math.random draws Lua 5.4's numbers for a seed; max/min compare exactly.
print(math.randomseed(1007))
print(math.random(0), math.random(10), math.random(-5, 5), math.random(1, 1))
print(math.random(math.mininteger, math.maxinteger))
print(string.format("%.17g", math.random()))
math.randomseed(42, 7)
local t = {}
for i = 1, 10 do t[i] = math.random(100) end
print(table.concat(t, " "))
print(pcall(math.random, 1, 2, 3))
print(pcall(math.random, 2, 1))
print(pcall(math.random, 1.5))
print(pcall(math.randomseed, "x"))
local maxint, minint = math.maxinteger, math.mininteger
print(math.max(maxint, 10e60) == 10e60, math.max(minint, minint + 1), math.min(maxint, maxint - 1))
print(math.max(3, 3.0), math.max(3.0, 3), math.min(1, 0/0), math.max("a", "b"))
print(pcall(math.max), pcall(math.min, 1, "2"))
