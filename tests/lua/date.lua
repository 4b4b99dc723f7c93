-- os.date and os.time compared with PUC Lua 5.4 (fixed instants).
local t = 1700000000
print(os.date("!%Y-%m-%d %H:%M:%S", t), os.date("!%a %A %b %B %j %p %y %w", t))
print(os.date("!%c", t), os.date("!%x %X %D %F %T %R", t))
local d = os.date("!*t", t)
print(d.year, d.month, d.day, d.hour, d.min, d.sec, d.wday, d.yday, d.isdst)
print(os.time({year = 2023, month = 11, day = 14, hour = 22, min = 13, sec = 20}) - os.time({year = 2023, month = 11, day = 14, hour = 0}))
print(os.time({year = 2024, month = 1, day = 32, hour = 0}) == os.time({year = 2024, month = 2, day = 1, hour = 0}))
print(pcall(os.date, "%Q"))
print(type(os.time()), type(os.clock()), os.difftime(10, 4))
