-- Lua 5.4's answers where piccolo gives others: resuming a coroutine
-- that cannot be, and the modulo by zero message.
local co = coroutine.create(function() end)
coroutine.resume(co)
print(coroutine.resume(co))
local me
me = coroutine.create(function() return coroutine.resume(me) end)
print(coroutine.resume(me))
local w = coroutine.wrap(function() end)
w()
print(pcall(w))
print(pcall(function() return 1 % 0 end))
print(pcall(function() return 7 // 0 end))
