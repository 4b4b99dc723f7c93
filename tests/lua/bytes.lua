-- A rule file that is not UTF-8: Lua takes any bytes in strings
-- and comments (café).
local s = "café ÿþ"
print(#s, s:byte(1, -1))
print(('é'):byte(), #'a\'é', s == "caf\233 \255\254")
