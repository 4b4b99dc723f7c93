-- To-be-closed variables: closed in reverse order at the end of their
-- scope, by return (values kept), break, and errors (passed to __close).
local log = {}
local function closer(name)
  return setmetatable({}, {__close = function(_, err) log[#log + 1] = name .. (err and (":" .. tostring(err)) or "") end})
end
do
  local a <close> = closer("a")
  local b <close> = closer("b")
  log[#log + 1] = "body"
end
print(table.concat(log, " ")); log = {}
local function f(x)
  local c <close> = closer("c")
  if x then return x * 2, "more" end
  log[#log + 1] = "fell"
end
print(f(21)); print(f(nil)); print(table.concat(log, " ")); log = {}
for i = 1, 3 do
  local d <close> = closer("d" .. i)
  if i == 2 then break end
end
print(table.concat(log, " ")); log = {}
print(pcall(function()
  local e <close> = closer("e")
  error("boom", 0)
end))
print(table.concat(log, " ")); log = {}
print(pcall(function() local z <close> = 42 end))
do local n <close> = nil; local f <close> = false; log[#log+1] = "nil ok" end
print(table.concat(log, " ")); log = {}
local function va(...)
  local g <close> = closer("g")
  return select("#", ...), ...
end
print(va(1, 2, 3))
print(table.concat(log, " "))
