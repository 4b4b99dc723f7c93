-- table.sort, xpcall, coroutine.wrap, rawequal, rawlen, gsub with a function.
local t = {5, 3, 9, 1, 7, 2, 8, 6, 4, 10, 15, 12, 11, 14, 13, 20, 18, 19, 17, 16}
table.sort(t)
print(table.concat(t, " "))
table.sort(t, function(a, b) return a > b end)
print(table.concat(t, " "))
local names = {"nginx", "apache", "collectd", "mysql"}
table.sort(names)
print(table.concat(names, ","))
local recs = {{n = "b", v = 2}, {n = "a", v = 3}, {n = "c", v = 1}}
table.sort(recs, function(x, y) return x.v < y.v end)
print(recs[1].n, recs[2].n, recs[3].n)
print(xpcall(function() error("boom", 0) end, function(m) return "handled: " .. m end))
print(xpcall(function(a, b) return a + b end, print, 2, 3))
local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
print(gen(), gen(), gen())
local a, b = {}, {}
print(rawequal(a, a), rawequal(a, b), rawequal(1, 1), rawequal("x", "y"), rawlen({1, 2, 3}), rawlen("abcd"))
print(string.gsub("hello world", "%w+", function(w) return w:upper() end))
print(string.gsub("a=1, b=2", "(%w+)=(%w+)", function(k, v) return v .. "=" .. k end))
print(string.gsub("abc", "b", function() return nil end))
print(("x y"):gsub("%s", function() return "_" end))
