-- Central rule: a host whose collectd falls silent is power-cycled by its
-- caretaker, the host that can act on it (here an IPMI gateway per pool).
-- Every host sends `load`; when that series is silent, so is the host.
-- Commands take no arguments, so the caretaker's config.json has one
-- command per host it cares for (`cycle-web1`, ...). The controller's
-- FleetValueOrigins must let web* name the caretaker (`asks web* ipmi-*`),
-- and its guards apply as to any repair (FleetMaxInFlight, the error
-- budget, pauses).
local caretaker = { web = "ipmi-web", db = "ipmi-db" }
return {
  host_silent = {
    on = "missing",
    match = { plugin = "load", type = "load" },
    handler = function(m)
      local by = caretaker[m.host:match("^(%a+)")]
      if by then
        return { service = "ipmi", command = "cycle-" .. m.host, host = by }
      end
    end,
  },
}, nil, {
  { missing = { host = "web1", plugin = "load", type = "load", interval = 10, silent_for = 25 },
    expect = { service = "ipmi", command = "cycle-web1" } },
  -- A host of no known pool: nothing to ask.
  { missing = { host = "mail1", plugin = "load", type = "load" } },
}
