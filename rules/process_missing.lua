-- Restart nginx when collectd's processes plugin (ProcessMatch/Process
-- "nginx") counts no nginx process for two intervals. Give up after three
-- restarts within ten minutes: something else is wrong then.
return {
  nginx_not_running = {
    match = { plugin = "processes", plugin_instance = "nginx", type = "ps_count" },
    hits = 2,
    give_up = { after = 3, within = 600 },
    handler = function(metric)
      if metric.values[1] == 0 then
        return { service = "nginx", command = "restart" }
      end
    end,
  },
}
