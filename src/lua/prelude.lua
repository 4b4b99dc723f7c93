-- Library functions written in Lua itself: they call back into Lua code
-- (comparators, message handlers, coroutines, replacement functions),
-- which piccolo's Rust callbacks cannot do simply. Loaded into every rule
-- VM before the rule file. Helpers from Rust arrive as arguments.
local __gsub_matches = ...
local type, error, select, pcall = type, error, select, pcall
local pack, unpack = table.pack, table.unpack

-- table.sort: quicksort (median of three) with insertion sort for short runs.
do
  local function less_default(a, b) return a < b end
  local function insertion(t, lo, hi, lt)
    for i = lo + 1, hi do
      local v = t[i]
      local j = i - 1
      while j >= lo and lt(v, t[j]) do
        t[j + 1] = t[j]
        j = j - 1
      end
      t[j + 1] = v
    end
  end
  local function quick(t, lo, hi, lt)
    while hi - lo > 12 do
      local mid = (lo + hi) // 2
      if lt(t[mid], t[lo]) then t[mid], t[lo] = t[lo], t[mid] end
      if lt(t[hi], t[lo]) then t[hi], t[lo] = t[lo], t[hi] end
      if lt(t[hi], t[mid]) then t[hi], t[mid] = t[mid], t[hi] end
      local pivot = t[mid]
      local i, j = lo, hi
      while i <= j do
        while lt(t[i], pivot) do i = i + 1 end
        while lt(pivot, t[j]) do j = j - 1 end
        if i <= j then
          t[i], t[j] = t[j], t[i]
          i, j = i + 1, j - 1
        end
      end
      if j - lo < hi - i then
        quick(t, lo, j, lt)
        lo = i
      else
        quick(t, i, hi, lt)
        hi = j
      end
    end
    insertion(t, lo, hi, lt)
  end
  function table.sort(t, comp)
    if type(t) ~= "table" then
      error("bad argument #1 to 'sort' (table expected, got " .. (t == nil and "no value" or type(t)) .. ")", 2)
    end
    if comp ~= nil and type(comp) ~= "function" then
      error("bad argument #2 to 'sort' (function expected, got " .. type(comp) .. ")", 2)
    end
    quick(t, 1, #t, comp or less_default)
  end
end

-- xpcall: the handler sees the error value (after unwinding, unlike PUC
-- Lua, so it cannot inspect the failing stack).
function xpcall(f, handler, ...)
  local r = pack(pcall(f, ...))
  if r[1] then return unpack(r, 1, r.n) end
  return false, handler(r[2])
end

function coroutine.wrap(f)
  local co = coroutine.create(f)
  return function(...)
    local r = pack(coroutine.resume(co, ...))
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end

function rawequal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "table" then
    -- Tables compare by identity: make them distinct keys of one table.
    local probe = {}
    probe[a] = true
    return probe[b] == true
  end
  return a == b
end

function rawlen(v)
  if type(v) == "string" then return string.len(v) end
  if type(v) ~= "table" then error("table or string expected", 2) end
  local n = 0
  while rawget(v, n + 1) ~= nil do n = n + 1 end
  return n
end

-- string.gsub with a function replacement: the matches come from Rust, the
-- calls happen here.
do
  local rust_gsub = string.gsub
  local concat = table.concat
  function string.gsub(s, pattern, repl, n)
    if type(repl) ~= "function" then return rust_gsub(s, pattern, repl, n) end
    local matches = __gsub_matches(s, pattern, n)
    local out, last = {}, 1
    for i = 1, #matches do
      local m = matches[i]
      out[#out + 1] = string.sub(s, last, m[1] - 1)
      local v = repl(unpack(m, 3, m.n))
      if v == nil or v == false then
        v = string.sub(s, m[1], m[2])
      elseif type(v) ~= "string" and type(v) ~= "number" then
        error("invalid replacement value (a " .. type(v) .. ")", 2)
      end
      out[#out + 1] = v
      last = m[2] + 1
    end
    out[#out + 1] = string.sub(s, last)
    return concat(out), #matches
  end
end

-- utf8.codes: iterate (position, code point) pairs.
function utf8.codes(s)
  local i = 1
  return function()
    if i > #s then return nil end
    local c = utf8.codepoint(s, i)
    local at = i
    i = i + #utf8.char(c)
    return at, c
  end
end

-- table.unpack: PUC Lua refuses more than about a million results ("too
-- many results to unpack"); piccolo would try to allocate them all.
do
  local raw = table.unpack
  function table.unpack(t, i, j)
    i = i or 1
    j = j or #t
    if j - i >= 1000000 then error("too many results to unpack", 2) end
    return raw(t, i, j)
  end
end
