-- Keys removed from a table (set to nil), then more keys added: the table
-- grows as Lua's does (piccolo 0.3.3 alone fails here; see
-- src/lua/setindex.rs).
local t = {}
for i = 1, 10 do t["k" .. i] = i end
t.k1 = nil
t["k2"] = nil
for i = 11, 200 do t["k" .. i] = i end
local n = 0
for _ in pairs(t) do n = n + 1 end
print(n, t.k1, t.k2, t.k3, t.k200)

-- Removed through a value that may be nil.
local down = {}
local function set(h, v) down[h] = v end
for i = 1, 50 do set("h" .. i, true) end
for i = 1, 50, 2 do set("h" .. i, nil) end
for i = 51, 300 do set("h" .. i, i % 3 == 0 or nil) end
n = 0
for _ in pairs(down) do n = n + 1 end
print(n, down.h2, down.h3, down.h51, down.h300)

-- __newindex is still called for new keys only.
local log = {}
local m = setmetatable({present = 1}, {__newindex = function(tt, k, v)
  log[#log + 1] = k
  rawset(tt, k, v)
end})
m.present = 2
m.fresh = 3
m.fresh = 4
print(m.present, m.fresh, #log, log[1])

-- A multiple assignment.
local a = {x = 1, y = 2}
a.x, a.y = a.y, nil
print(a.x, a.y)

-- rawset removing a key, then growth.
local r = {}
for i = 1, 8 do rawset(r, "r" .. i, i) end
rawset(r, "r1", nil)
for i = 9, 100 do r["r" .. i] = i end
n = 0
for _ in pairs(r) do n = n + 1 end
print(n, r.r1, r.r100)

-- Nested targets and a call as the table.
local u = {a = {b = {}}}
local function get() return u.a end
get().b.c = 7
u.a["b"].d = nil
print(u.a.b.c, u.a.b.d)
