-- What our front end fixes in piccolo 0.3.3: missing arguments are nil,
-- and multiple assignment evaluates every value first.
local function defaults(a, b, c)
  b = b or "b-default"
  c = c or "c-default"
  return a, b, c
end
local function dirty() local w, x, y, z = 27.5, 27.5, 27.5, 27.5 return w end
dirty()
print(defaults(1))
print(defaults({1, 2, 3}) ~= nil, select(2, defaults({1})))
local a, b = 1, 2
a, b = b, a
print(a, b)
local t = {x = 1, y = 2, 1, 2}
t.x, t.y = t.y, t.x
t[1], t[2] = t[2], t[1]
print(t.x, t.y, t[1], t[2])
local i, j = 1, 2
i, j = j, i + j
print(i, j)
local obj = {}
function obj:get(k) return k or "none" end
print(obj:get(), obj:get("k"))
