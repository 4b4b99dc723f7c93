-- Report a sustained high load: the short-term load above the number of
-- CPUs times two for three intervals in a row. Plain Lua state in a file
-- local works as in lua-collectd-monitor; `hits` does the same declaratively.
local CPUS = 2
return {
  load_high_for_3_intervals = {
    match = { plugin = "load", type = "load" },
    hits = 3,
    repeat_interval = 900,
    handler = function(m)
      if m.dsnames[0] == "shortterm" and m.values[1] > CPUS * 2 then
        return { service = "hello", command = "exec" }
      end
    end,
  },
}
