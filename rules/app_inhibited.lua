-- Restart the app when its health check says down, except while the
-- database it needs is down on the same host: restarting the app then
-- cures nothing. The decision says so (`inhibited`): it is counted and
-- logged (status, history), not run; once the database is up again, the
-- app's next failing value is repaired. A central collectd runs the same
-- file over the fleet's values, keyed by host.
local db_down = {}
return {
  app_down = function(m)
    if m.plugin == "app" and m.type_instance == "up" and m.values[1] == 0 then
      return { service = "app", command = "restart",
               inhibited = db_down[m.host] and "database down" }
    end
  end,
  db_state = function(m)
    if m.plugin == "postgresql" and m.type_instance == "up" then
      db_down[m.host] = m.values[1] == 0
    end
  end,
}
