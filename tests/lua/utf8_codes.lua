-- utf8.char/codepoint/len/codes with Lua 5.4's decoder: six-byte forms up
-- to 2^31 - 1, lax mode for surrogates and codes beyond Unicode, and the
-- errors for bad sequences and bad positions.
local function show(...)
  local out = {}
  for i = 1, select("#", ...) do out[#out + 1] = tostring((select(i, ...))) end
  print(table.concat(out, " "))
end
local function try(f, ...)
  local ok, err = pcall(f, ...)
  print(ok, ok and "" or err)
end
show(#utf8.char(0x7FFFFFFF), utf8.char(72, 0x20AC, 0x10FFFF):byte(1, -1))
show(utf8.codepoint(utf8.char(0x7FFFFFFF), 1, 1, true))
try(utf8.codepoint, utf8.char(0x7FFFFFFF))
try(utf8.codepoint, "\xED\xA0\x80")
show(utf8.codepoint("\xED\xA0\x80", 1, 1, true))
show(utf8.len("h\xC3\xA9llo"), utf8.len("ab\xFFcd"), utf8.len("\xED\xA0\x80"), utf8.len("\xED\xA0\x80", 1, -1, true))
show(utf8.len("abc", 4), utf8.len("abc", -1), utf8.codepoint("abc", -1))
try(utf8.len, "abc", 5)
try(utf8.len, "abc", 1, 4)
try(utf8.codepoint, "abc", 0)
try(utf8.codepoint, "abc", 1, 4)
try(utf8.char, -1)
try(utf8.char, 0x80000000)
for p, c in utf8.codes("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") do show(p, c) end
for p, c in utf8.codes("\xF4\x90\x80\x80", true) do show("lax", p, c) end
print(pcall(function() for _ in utf8.codes("a\xFFb") do end end) == false)
print(pcall(function() for _ in utf8.codes("\xF4\x90\x80\x80") do end end) == false)
for p, c in utf8.codes("\x80abc") do show("skip", p, c) end
try(function() for _ in utf8.codes("a\xC3\xA9\xA9") do end end)
show(utf8.charpattern == "[\0-\x7F\xC2-\xFD][\x80-\xBF]*")
