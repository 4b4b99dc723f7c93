-- A load spike across a pool is not a per-host fault: restarting every
-- host makes it worse. Restart the app on a host whose load (shortterm)
-- stays above 8 for 3 readings; but when more than 20 % of the rest of
-- its pool (the hosts named like it: web1, web2, ...) is loaded too, send
-- one notification instead (at most one a minute for this handler,
-- however many hosts ask) and restart nothing. Meant for a central
-- collectd, which sees the whole pool.
local high = monitor.stable{ readings = 3 }
local pool = monitor.fleet{ expire = 60 }
return {
  load_high = function(m)
    if m.plugin ~= "load" then return end
    local loaded = m.values[1] > 8
    pool:set(m.host, loaded, m.time)
    if high(m.host, loaded, m.time) then
      local name = m.host:match("^%a+") or m.host
      local n, all = pool:count("^" .. name .. "%d", m.time)
      local others = all > 1 and (n - 1) / (all - 1) or 0
      if others > 0.2 then
        return { notify = string.format("%s pool: %d of %d hosts loaded", name, n, all) }
      end
      return { service = "app", command = "restart" }
    end
  end,
}
