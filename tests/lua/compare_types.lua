-- Ordering comparisons between a number and a string raise an error (no
-- conversion); a table with __lt/__le is compared through them.
local function try(f) print(pcall(f)) end
local m = { values = { 5 }, plugin_instance = "3" }
try(function() return m.values[1] > "4" end)
try(function() return "10" < 9 end)
try(function() return m.plugin_instance < 4 end)
try(function() return 4 >= m.plugin_instance end)
try(function() return m.values[1] <= 9 end)
try(function() return "a" < "b", "b" <= "a" end)
local mt = { __lt = function(a, b) return true end, __le = function(a, b) return false end }
local t = setmetatable({}, mt)
try(function() return t < 1, 1 < t end)
try(function() return t <= 1, 1 <= t end)
try(function() return t > 1, 1 >= t end)
try(function() return nil < 1 end)
try(function() return {} < {} end)
try(function() return true <= false end)
local x = "5"
try(function() return x < 6 end)
for _, v in ipairs({ 1, "2", 3.5 }) do try(function() return v < 3 end) end
