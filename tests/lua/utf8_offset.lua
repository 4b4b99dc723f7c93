local s = "aé€😀z"
for _, n in ipairs({-6, -5, -3, -1, 0, 1, 2, 3, 4, 5, 6, 7}) do print(n, utf8.offset(s, n)) end
print(utf8.offset(s, 1, 2), utf8.offset(s, 0, 3), utf8.offset(s, -1, 4), utf8.offset(s, 2, -1))
print((pcall(utf8.offset, s, 1, 3)))
print(pcall(utf8.offset, s, 1, 100))
print(coroutine.isyieldable(), coroutine.wrap(function() return coroutine.isyieldable() end)())
