-- (f()) and (...) give exactly one value.
local function two() return 1, 2 end
print((two()))
print(select("#", (two())))
local function v(...) return (...) end
print(v(7, 8, 9))
