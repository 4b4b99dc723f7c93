-- table.insert/remove/concat/unpack through __index/__newindex/__len, and
-- table.sort's own algorithm (its check of the order function included).
local store = {}
local proxy = setmetatable({}, {
  __len = function() return #store end,
  __index = function(_, k) return store[k] end,
  __newindex = function(_, k, v) store[k] = v end,
})
for i = 1, 5 do table.insert(proxy, 1, i) end
table.insert(proxy, 10)
print(#store, table.concat(store, ","), rawget(proxy, 1))
print(table.remove(proxy, 1), table.remove(proxy), #store)
print(table.concat(proxy, "-"), table.concat(proxy, "-", 2, 3))
print(table.unpack(proxy))
table.sort(proxy, function(a, b) return a > b end)
print(table.concat(store, " "))
print(pcall(table.insert, setmetatable({}, {__len = function() return "x" end}), 1))
print(pcall(table.insert, proxy, 9, 1))
print(pcall(table.remove, proxy, 9))
print(pcall(table.insert, proxy, 1, 2, 3))
local wrap = setmetatable({}, {__len = function() return math.maxinteger end})
table.insert(wrap, 20)
print(next(wrap))
print(pcall(table.concat, setmetatable({}, {__index = function() return {} end, __len = function() return 2 end})))
print(pcall(table.sort, {1, 2, 3, 4, 5}, function(a, b) return true end))
local t = {}
for i = 1, 300 do t[i] = (i * 7919) % 301 end
local calls = 0
table.sort(t, function(a, b) calls = calls + 1 return a < b end)
print(t[1], t[150], t[300], calls)
print(pcall(pairs))
print(pcall(ipairs))
print(pcall(table.remove, {1}, 5))
