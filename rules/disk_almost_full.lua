-- Rotate logs when a filesystem has less than 10 % free, twice in a row
-- (collectd's df plugin with ValuesPercentage true), at most once an hour.
return {
  root_almost_full = {
    match = { plugin = "df", plugin_instance = "root", type = "percent_bytes", type_instance = "free" },
    hits = 2,
    repeat_interval = 3600,
    handler = function(metric)
      if metric.values[1] < 10 then
        return { service = "logs", command = "rotate" }
      end
    end,
  },
}
