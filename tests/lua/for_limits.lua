-- Numeric for loops that reach the integer limits (the VM would wrap
-- around after the last value), with closures keeping each round's value.
local out = {}
local n = 0
for i = math.maxinteger - 2, math.maxinteger do n = n + 1; out[#out+1] = i end
print(table.concat(out, " "), n); out = {}
for i = math.mininteger, math.mininteger + 2 do n = n + 1 end
print(table.concat(out, " "), n); out = {}
for i = math.mininteger + 2, math.mininteger, -1 do out[#out+1] = i end
print(table.concat(out, " ")); out = {}
local fs = {}
for i = 1, 3 do fs[i] = function() return i end end
print(fs[1](), fs[3]())
for i = 1, 3 do i = i * 10; out[#out+1] = i end
print(table.concat(out, " ")); out = {}
local big = math.maxinteger
for i = big - 5, big, 2 do out[#out+1] = i end
print(table.concat(out, " ")); out = {}
for i = 1, 0 do print("never") end
