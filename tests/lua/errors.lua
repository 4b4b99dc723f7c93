-- error() positions.
print(pcall(function() error("boom") end))
print(pcall(function()
  error("two lines down")
end))
print(pcall(error, "plain"))
print(pcall(function() error("no position", 0) end))
print(select(2, pcall(function() error({code = 7}) end)).code)
local ok, e = pcall(function() local s = "x"; error(s .. "y") end) print(e)
