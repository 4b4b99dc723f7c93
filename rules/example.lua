-- The example rules of lua-collectd-monitor, rewritten: the same three
-- handlers with the same behaviour. Each returns the recovery command to
-- run, or nil to do nothing.
local TEN_GB = 10 * 1000 * 1000 * 1000

local function is_memory_free(metric)
  return metric.plugin == "memory" and metric.type_instance == "free"
end

local metric_handlers = {
  memory_free_is_under_10GB = function(metric)
    if is_memory_free(metric) and metric.values[1] <= TEN_GB then
      return { service = "hello", command = "exec" }
    end
  end,
  -- The complement of the handler above, so one of the two fires on every
  -- memory/free value: a demonstration of why flap control matters.
  memory_free_is_over_10GB = function(metric)
    if is_memory_free(metric) and metric.values[1] > TEN_GB then
      return { service = "hello", command = "exec" }
    end
  end,
}

local notification_handlers = {
  fail_example = function(notification)
    if notification.severity == NOTIF_FAILURE then
      return { service = "hello", command = "exec" }
    end
  end,
}

-- Golden examples (the third return value): `collectd-monitor rules test
-- rules/example.lua` checks that each event leads to the expected decision.
local examples = {
  { metric = { plugin = "memory", type = "memory", type_instance = "free", values = { 5e9 } },
    expect = { service = "hello", command = "exec" } },
  { metric = { plugin = "memory", type = "memory", type_instance = "free", values = { 2e10 } },
    expect = { service = "hello", command = "exec" } },
  { metric = { plugin = "cpu", type = "cpu", type_instance = "idle", values = { 42 } } },
  { notification = { severity = NOTIF_FAILURE, plugin = "nginx", message = "down" },
    expect = { service = "hello", command = "exec" } },
  { notification = { severity = NOTIF_OKAY, plugin = "nginx", message = "up" } },
}

return metric_handlers, notification_handlers, examples
