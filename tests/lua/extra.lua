-- tonumber with a base, string.byte/char, table.move, utf8.
print(tonumber("ff", 16), tonumber("777", 8), tonumber("zz", 36), tonumber("102", 2), tonumber("  -1010  ", 2), tonumber("8", 8))
print(string.byte("ABC"), string.byte("ABC", 2), string.byte("ABC", 1, -1), string.byte("ABC", 10))
print(string.char(72, 105), string.char(), ("x"):byte())
local t = table.move({1, 2, 3, 4, 5}, 2, 4, 1)
print(table.concat(t, ","))
local u = table.move({1, 2, 3}, 1, 3, 2)
print(table.concat(u, ","))
print(table.concat(table.move({1, 2}, 1, 2, 3, {9, 9}), ","))
print(utf8.char(72, 233, 8364), utf8.len("héllo€"), utf8.codepoint("héllo", 1, -1))
print(utf8.len("\xff"), #utf8.charpattern)
for p, c in utf8.codes("aé€") do print(p, c) end
