-- Method calls on strings and tables (rewritten by our front end).
local s = "Hello"
print(s:upper(), s:lower(), s:len(), s:sub(2, 4), s:lower():len())
print(("abc"):upper(), ("x"):rep(3, "-"))
local Counter = {}
Counter.__index = Counter
function Counter.new() return setmetatable({n = 0}, Counter) end
function Counter:add(k) self.n = self.n + k return self end
local c = Counter.new()
print(c:add(2):add(3).n)
local t = {items = {}}
function t.items:push(v) self[#self + 1] = v end
t.items:push("a")
t.items:push("b")
print(#t.items, table.concat(t.items, "+"))
print(pcall(function() local n = nil return n:foo() end) == false)
