-- Restart nginx when a FAILURE notification about it arrives (for example
-- from collectd's threshold plugin watching processes-nginx/ps_count).
return nil, {
  nginx_failure = {
    match = { plugin = { pattern = "^processes" }, plugin_instance = "nginx" },
    repeat_interval = 300,
    handler = function(n)
      if n.severity == NOTIF_FAILURE then
        return { service = "nginx", command = "restart" }
      end
    end,
  },
}
