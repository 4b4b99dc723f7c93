-- Restart nginx when collectd's nginx plugin stops reporting (its status
-- page no longer answers): collectd finds the series silent after Timeout
-- (default 2) times its interval and calls missing handlers once.
return {
  nginx_silent = {
    on = "missing",
    match = { plugin = "nginx", type = "nginx_requests" },
    cooldown = 300,
    handler = function(m)
      return { service = "nginx", command = "restart" }
    end,
  },
}, nil, {
  { missing = { host = "web1", plugin = "nginx", type = "nginx_requests", interval = 10 },
    expect = { service = "nginx", command = "restart" } },
  { missing = { host = "web1", plugin = "cpu", plugin_instance = "0", type = "cpu", type_instance = "user" } },
}
