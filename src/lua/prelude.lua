-- Library functions written in Lua itself: they call back into Lua code
-- (comparators, message handlers, coroutines, replacement functions),
-- which piccolo's Rust callbacks cannot do simply. Loaded into every rule
-- VM before the rule file. Helpers from Rust arrive as arguments.
local __gsub_matches = ...
local type, error, select, pcall = type, error, select, pcall
local pack, unpack = table.pack, table.unpack

-- table.sort: Lua 5.4's quicksort, comparison for comparison (so an
-- inconsistent order function meets the same "invalid order function for
-- sorting" instead of reading past the array): the median of the first,
-- middle and last elements as pivot, the smaller part sorted by recursion
-- and the larger by the loop, the pivot moved off the middle when the
-- parts come out too unequal.
do
  local function less_default(a, b) return a < b end
  local function invalid() error("invalid order function for sorting", 0) end
  -- t[lo] <= pivot == t[up - 1] <= t[up]: splits t[lo + 1 .. up - 2]
  -- around the pivot and returns its final index.
  local function partition(t, lo, up, lt, pivot)
    local i, j = lo, up - 1
    while true do
      i = i + 1
      while lt(t[i], pivot) do
        if i == up - 1 then invalid() end
        i = i + 1
      end
      j = j - 1
      while lt(pivot, t[j]) do
        if j < i then invalid() end
        j = j - 1
      end
      if j < i then
        t[up - 1], t[i] = t[i], pivot
        return i
      end
      t[i], t[j] = t[j], t[i]
    end
  end
  local scramble = 0x2545F491
  local function auxsort(t, lo, up, lt, rnd)
    while lo < up do
      if lt(t[up], t[lo]) then t[lo], t[up] = t[up], t[lo] end
      if up - lo == 1 then return end
      local p
      if up - lo < 100 or rnd == 0 then
        p = (lo + up) // 2
      else
        local r4 = (up - lo) // 4
        p = rnd % (r4 * 2) + (lo + r4)
      end
      if lt(t[p], t[lo]) then
        t[p], t[lo] = t[lo], t[p]
      elseif lt(t[up], t[p]) then
        t[p], t[up] = t[up], t[p]
      end
      if up - lo == 2 then return end
      local pivot = t[p]
      t[p], t[up - 1] = t[up - 1], pivot
      p = partition(t, lo, up, lt, pivot)
      local n
      if p - lo < up - p then
        auxsort(t, lo, p - 1, lt, rnd)
        n, lo = p - lo, p + 1
      else
        auxsort(t, p + 1, up, lt, rnd)
        n, up = up - p, p - 1
      end
      if (up - lo) // 128 > n then
        scramble = (scramble * 1103515245 + 12345) & 0x7fffffff
        rnd = scramble
      end
    end
  end
  function table.sort(t, comp)
    if type(t) ~= "table" then
      error("bad argument #1 to 'sort' (table expected, got " .. (t == nil and "no value" or type(t)) .. ")", 2)
    end
    if comp ~= nil and type(comp) ~= "function" then
      error("bad argument #2 to 'sort' (function expected, got " .. type(comp) .. ")", 2)
    end
    local n = #t
    if n > 1 then
      -- As lua's sort: an array this large cannot be sorted in memory.
      if n >= 2147483647 then error("bad argument #1 to 'sort' (array too big)", 2) end
      auxsort(t, 1, n, comp or less_default, 0)
    end
  end
end

-- To-be-closed variables (see front/close.rs): the value is checked where
-- it is declared, and its __close runs when the rest of its scope ends,
-- with the error if one ended it (which then goes on).
do
  local getmetatable = getmetatable
  function __close_check(v, name, at)
    if v == nil or v == false then return end
    local t = type(v)
    local mt = (t == "table" or t == "userdata") and getmetatable(v)
    if type(mt) == "table" and mt.__close ~= nil then return end
    error(at .. " variable '" .. name .. "' got a non-closable value", 0)
  end
  function __close_run(v, f, ...)
    local r = pack(pcall(f, ...))
    if v ~= nil and v ~= false then
      local close = getmetatable(v).__close
      if r[1] then close(v, nil) else close(v, r[2]) end
    end
    if not r[1] then error(r[2], 0) end
    return r
  end
  function __close_unpack(r)
    return unpack(r, 3, r.n)
  end
end

-- xpcall: the handler sees the error value (after unwinding, unlike PUC
-- Lua, so it cannot inspect the failing stack).
function xpcall(f, handler, ...)
  local r = pack(pcall(f, ...))
  if r[1] then return unpack(r, 1, r.n) end
  return false, handler(r[2])
end

-- coroutine.resume: Lua 5.4's answers for a coroutine that cannot be
-- resumed (piccolo's is an error object, not these words).
do
  local resume, status = coroutine.resume, coroutine.status
  function coroutine.resume(co, ...)
    if type(co) == "thread" then
      local s = status(co)
      if s == "dead" then return false, "cannot resume dead coroutine" end
      if s == "running" then return false, "cannot resume non-suspended coroutine" end
    end
    return resume(co, ...)
  end
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
    -- A table with a metatable is read through its __index, as in Lua:
    -- look the match up from here.
    if type(repl) == "table" and getmetatable(repl) ~= nil then
      local t = repl
      repl = function(k) return t[k] end
    end
    if type(repl) ~= "function" then return rust_gsub(s, pattern, repl, n) end
    local matches = __gsub_matches(s, pattern, n)
    local out, last, changed = {}, 1, false
    for i = 1, #matches do
      local m = matches[i]
      out[#out + 1] = string.sub(s, last, m[1] - 1)
      local v = repl(unpack(m, 3, m.n))
      if v == nil or v == false then
        v = string.sub(s, m[1], m[2])
      elseif type(v) ~= "string" and type(v) ~= "number" then
        error("invalid replacement value (a " .. type(v) .. ")", 2)
      else
        changed = true
      end
      out[#out + 1] = v
      last = m[2] + 1
    end
    -- As Lua's: with nothing replaced, the subject itself comes back.
    -- (A number subject comes back as the string it was read as.)
    if not changed then return type(s) == "string" and s or tostring(s), #matches end
    out[#out + 1] = string.sub(s, last)
    return concat(out), #matches
  end
end

-- table.unpack: PUC Lua refuses more than about a million results ("too
-- many results to unpack"); piccolo would try to allocate them all.
do
  local raw = table.unpack
  function table.unpack(t, i, j)
    i = i or 1
    j = j or #t
    if i > j then return end
    -- Lua's stack holds 1 000 000 slots, a score of them taken by the
    -- call itself. (j - i wraps around for a range wider than the
    -- integers.)
    if j - i >= 999980 or j - i < 0 then error("too many results to unpack", 2) end
    if getmetatable(t) == nil then return raw(t, i, j) end
    -- Through __index, element by element, as Lua 5.4 reads.
    local r = {}
    for k = 0, j - i do r[k + 1] = t[i + k] end
    return raw(r, 1, j - i + 1)
  end
end

-- table.insert, table.remove and table.concat on a table with a
-- metatable: Lua 5.4 reads and writes element by element through
-- __index/__newindex and takes the length from __len. The Rust versions
-- (raw access, for plain tables) check the arguments and hand such tables
-- here.
do
  local mtype, ult, raw_concat = math.type, math.ult, table.concat
  local function length(t)
    local n = #t
    if mtype(n) ~= "integer" then error("object length is not an integer", 3) end
    return n
  end
  function __meta_insert(t, ...)
    -- (Wraps at math.maxinteger, as Lua's does.)
    local e = length(t) + 1
    if select("#", ...) == 1 then
      t[e] = ...
      return
    end
    local pos, v = ...
    if not ult(pos - 1, e) then
      error("bad argument #2 to 'table.insert' (position out of bounds)", 2)
    end
    for i = e, pos + 1, -1 do t[i] = t[i - 1] end
    t[pos] = v
  end
  function __meta_remove(t, pos)
    local size = length(t)
    pos = pos or size
    if pos ~= size and ult(size, pos - 1) then
      error("bad argument #1 to 'table.remove' (position out of bounds)", 2)
    end
    local v = t[pos]
    while pos < size do
      t[pos] = t[pos + 1]
      pos = pos + 1
    end
    t[pos] = nil
    return v
  end
  function __meta_concat(t, sep, i, j)
    i = i or 1
    j = j or length(t)
    local parts = {}
    for k = i, j do
      local v = t[k]
      local kind = type(v)
      if kind ~= "string" and kind ~= "number" then
        error("invalid value (" .. kind .. ") at index " .. k .. " in table for 'concat'", 2)
      end
      parts[#parts + 1] = v
    end
    return raw_concat(parts, sep)
  end
end

-- table.move in Lua, so that a long move runs on the VM's fuel and time
-- limits (and goes through __index/__newindex, as PUC Lua's does).
do
  local maxinteger = math.maxinteger
  function table.move(a1, f, e, t, a2)
    if type(a1) ~= "table" then
      error("bad argument #1 to 'table.move' (table expected, got " .. (a1 == nil and "no value" or type(a1)) .. ")", 2)
    end
    if a2 == nil then a2 = a1 end
    if type(a2) ~= "table" then
      error("bad argument #5 to 'table.move' (table expected, got " .. type(a2) .. ")", 2)
    end
    local n = {f, e, t}
    for k = 1, 3 do
      local v = math.tointeger(n[k])
      if v == nil then
        local why = type(n[k]) == "number" and "number has no integer representation"
          or "number expected, got " .. (n[k] == nil and "no value" or type(n[k]))
        error("bad argument #" .. (k + 1) .. " to 'table.move' (" .. why .. ")", 2)
      end
      n[k] = v
    end
    f, e, t = n[1], n[2], n[3]
    if e >= f then
      if not (f > 0 or e < maxinteger + f) then
        error("bad argument #3 to 'table.move' (too many elements to move)", 2)
      end
      if t > maxinteger - (e - f) then
        error("bad argument #4 to 'table.move' (destination wrap around)", 2)
      end
      if t > e or t <= f or a1 ~= a2 then
        for i = 0, e - f do a2[t + i] = a1[f + i] end
      else
        for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end
      end
    end
    return a2
  end
end

-- Metamethod adapters for the operator helpers of ops.rs: a comparison
-- metamethod's result as a boolean, an arithmetic one's first result.
function __cmp_meta(h, a, b)
  if h(a, b) then return true end
  return false
end
function __arith_meta(h, a, b)
  return (h(a, b))
end

-- getmetatable/setmetatable as Lua 5.4's: strings share a metatable whose
-- __index is `string`, other values have none, and a `__metatable` field
-- protects a metatable.
do
  local raw_get, raw_set = getmetatable, setmetatable
  local string_meta = {__index = string}
  function getmetatable(v)
    local t = type(v)
    if t == "string" then return string_meta end
    if t ~= "table" then return nil end
    local mt = raw_get(v)
    if mt ~= nil then
      local protected = rawget(mt, "__metatable")
      if protected ~= nil then return protected end
    end
    return mt
  end
  function setmetatable(t, mt)
    if type(t) ~= "table" then
      error("bad argument #1 to 'setmetatable' (table expected, got " .. (t == nil and "no value" or type(t)) .. ")", 2)
    end
    if mt ~= nil and type(mt) ~= "table" then
      error("bad argument #2 to 'setmetatable' (nil or table expected)", 2)
    end
    local old = raw_get(t)
    if old ~= nil and rawget(old, "__metatable") ~= nil then
      error("cannot change a protected metatable", 2)
    end
    return raw_set(t, mt)
  end
end

-- coroutine.isyieldable: true inside a coroutine.
function coroutine.isyieldable()
  local _, main = coroutine.running()
  return not main
end

-- utf8.offset(s, n [, i]): where the n-th character counted from byte i
-- starts (Lua 5.4's lutf8lib.c, one-based).
do
  local byte = string.byte
  local function iscont(s, p)
    local c = byte(s, p)
    return c ~= nil and c >= 0x80 and c < 0xC0
  end
  function utf8.offset(s, n, i)
    if type(s) ~= "string" then
      error("bad argument #1 to 'utf8.offset' (string expected, got " .. (s == nil and "no value" or type(s)) .. ")", 2)
    end
    if math.type(n) ~= "integer" then
      error("bad argument #2 to 'utf8.offset' (number expected, got " .. (n == nil and "no value" or type(n)) .. ")", 2)
    end
    local len = #s
    if i == nil then
      i = n >= 0 and 1 or len + 1
    elseif i < 0 then
      i = (-i > len) and 0 or len + i + 1
    end
    if i < 1 or i > len + 1 then
      error("bad argument #3 to 'utf8.offset' (position out of bounds)", 2)
    end
    if n == 0 then
      while i > 1 and iscont(s, i) do i = i - 1 end
      return i
    end
    if iscont(s, i) then error("initial position is a continuation byte", 2) end
    if n < 0 then
      while n < 0 and i > 1 do
        repeat i = i - 1 until not (i > 1 and iscont(s, i))
        n = n + 1
      end
    else
      n = n - 1
      while n > 0 and i <= len do
        repeat i = i + 1 until not iscont(s, i)
        n = n - 1
      end
    end
    if n == 0 then return i end
    return nil
  end
end

-- string.format and print with an argument whose text comes from
-- __tostring (the Rust versions call these when they see one): convert
-- those arguments, then format or print.
do
  local format, tostring, type, pack, unpack = string.format, tostring, type, table.pack, table.unpack
  function __format_tostring(fmt, ...)
    local args = pack(...)
    for i = 1, args.n do
      if type(args[i]) == "table" then args[i] = tostring(args[i]) end
    end
    return format(fmt, unpack(args, 1, args.n))
  end
  local print = print
  function __print_tostring(...)
    local args = pack(...)
    for i = 1, args.n do
      if type(args[i]) == "table" then args[i] = tostring(args[i]) end
    end
    return print(unpack(args, 1, args.n))
  end
end

-- `t[k] = v` as the VM does it, for the cases `__setindex` (a file that
-- removes keys, src/lua/setindex.rs) leaves to the VM: a `__newindex`
-- for a new key, a value that is not a table.
function __setindex_slow(t, k, v) t[k] = v end

-- monitor: conditions over time and over many hosts (docs/rules.md,
-- "Conditions over time and over the fleet"). Each helper is an object
-- made once in the file and called per event; it keeps its state in the
-- file's own VM, per key, at most `keys` keys (10 000 unless given): past
-- that, the older half of the keys (by last update) is forgotten. No key
-- is ever set to nil here: piccolo 0.3.3 fails to grow a table that holds
-- a removed string key, so forgetting builds fresh tables instead.
do
  local type, error, next, sort = type, error, next, table.sort
  local math_huge, string_find = math.huge, string.find

  -- `store` holds `stamp` (key -> last update) and the per-key tables
  -- named in `names`; `touch(key, now)` stamps the key, first making room
  -- for a new one when `limit` keys are kept.
  local function bounded(limit, names)
    local store = { stamp = {}, kept = 0 }
    for i = 1, #names do store[names[i]] = {} end
    local function forget_older_half()
      local stamps, n = {}, 0
      for _, t in next, store.stamp do n = n + 1; stamps[n] = t end
      sort(stamps)
      local cut = stamps[n // 2 + 1]
      local old, kept, count = store.stamp, {}, 0
      local fresh = {}
      for i = 1, #names do fresh[i] = {} end
      for k, t in next, old do
        if t >= cut then
          kept[k] = t
          count = count + 1
          for i = 1, #names do fresh[i][k] = store[names[i]][k] end
        end
      end
      store.stamp, store.kept = kept, count
      for i = 1, #names do store[names[i]] = fresh[i] end
    end
    local function touch(key, now)
      if store.stamp[key] == nil then
        if store.kept >= limit then forget_older_half() end
        store.kept = store.kept + 1
      end
      store.stamp[key] = now
    end
    return store, touch
  end

  local function options(o, name)
    if o == nil then return {} end
    if type(o) ~= "table" then
      error("bad argument #1 to 'monitor." .. name .. "' (table of options expected, got " .. type(o) .. ")", 3)
    end
    return o
  end

  local function limit_of(o)
    local keys = o.keys or 10000
    if type(keys) ~= "number" or keys < 1 then error("monitor: `keys` must be a number of at least 1", 3) end
    return keys
  end

  local lib = {}

  -- monitor.stable{readings = N, seconds = S}: f(key, condition, time)
  -- is true once `condition` has held for the last N calls with `key`
  -- (default 1) and, with `seconds`, for at least S seconds of the
  -- events' own time since it first held; false resets.
  function lib.stable(o)
    o = options(o, "stable")
    local readings, seconds = o.readings or 1, o.seconds or 0
    local store, touch = bounded(limit_of(o), { "count", "since" })
    local seq = 0
    return function(key, condition, time)
      seq = seq + 1
      if not condition then
        if store.count[key] ~= nil then store.count[key] = 0; store.since[key] = false end
        return false
      end
      touch(key, seq)
      local count, since = store.count, store.since
      local n = (count[key] or 0) + 1
      count[key] = n
      if not since[key] then since[key] = time or 0 end
      return n >= readings and (time or 0) - since[key] >= seconds
    end
  end

  -- monitor.rate{wrap = W}: f(key, value, time) is the change per second
  -- since the key's last call, nil on its first; a counter that went down
  -- wrapped at W (2^32 or 2^64) when W is given, else restarted (nil).
  function lib.rate(o)
    o = options(o, "rate")
    local wrap = o.wrap
    local store, touch = bounded(limit_of(o), { "last", "at" })
    local seq = 0
    return function(key, value, time)
      seq = seq + 1
      touch(key, seq)
      local last, at = store.last, store.at
      local before, then_ = last[key], at[key]
      last[key], at[key] = value, time
      if before == nil or then_ == nil or time <= then_ then return nil end
      local delta = value - before
      if delta < 0 then
        if wrap == nil then return nil end
        delta = delta + wrap
      end
      return delta / (time - then_)
    end
  end

  -- monitor.window{size = N}: f(key, value) adds `value` to the key's
  -- last N values and returns their min, max and mean.
  function lib.window(o)
    o = options(o, "window")
    local size = o.size or 10
    if type(size) ~= "number" or size < 1 then error("monitor.window: `size` must be a number of at least 1", 2) end
    local store, touch = bounded(limit_of(o), { "rings" })
    local seq = 0
    return function(key, value)
      seq = seq + 1
      touch(key, seq)
      local rings = store.rings
      local ring = rings[key]
      if ring == nil then ring = { n = 0, at = 0 }; rings[key] = ring end
      ring.at = ring.at % size + 1
      ring[ring.at] = value
      if ring.n < size then ring.n = ring.n + 1 end
      local min, max, sum = math_huge, -math_huge, 0
      for i = 1, ring.n do
        local v = ring[i]
        if v < min then min = v end
        if v > max then max = v end
        sum = sum + v
      end
      return min, max, sum / ring.n
    end
  end

  -- monitor.fleet{expire = S}: the state of many hosts. f:set(host, state,
  -- time) records whether the host is in the state now; f:count(pattern,
  -- time) returns how many hosts whose name the Lua pattern finds are in
  -- the state, how many such hosts there are, and the share (0 when
  -- none); hosts not set for `expire` seconds of event time (60 unless
  -- given) count as neither.
  function lib.fleet(o)
    o = options(o, "fleet")
    local expire = o.expire or 60
    local store, touch = bounded(limit_of(o), { "state" })
    local fleet = {}
    function fleet:set(host, on, time)
      touch(host, time or 0)
      store.state[host] = on and true or false
    end
    function fleet:count(pattern, time)
      local now = time or -math_huge
      local seen, yes, all = store.stamp, 0, 0
      for host, on in next, store.state do
        if now - seen[host] <= expire and (pattern == nil or string_find(host, pattern)) then
          all = all + 1
          if on then yes = yes + 1 end
        end
      end
      return yes, all, all > 0 and yes / all or 0
    end
    return fleet
  end

  monitor = lib
end
