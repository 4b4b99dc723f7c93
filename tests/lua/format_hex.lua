-- string.format %a/%A with precision and flags (C's rounding, carries in the
-- leading digit, subnormals), and inf padded with spaces under the 0 flag.
for _, f in ipairs{"%a","%+.2A","%.4A","%.3a","%.0a","%#.0a","% a","%020a","%-20a|","%.13a","%.15a","%.1a","%A"} do
  local out = {}
  for _, x in ipairs{12, -12, 0, -0.0, 1.5, 2.5, 0.1, 1/3, 1e-310, -1e30, 1/0, -1/0, 0x1.ffp0, 1.96875} do
    out[#out+1] = string.format(f, x)
  end
  print(table.concat(out, " "))
end
print(string.format("%010f|%010e|%010g|%010.3f|%-010f|", 1/0, -1/0, 1/0, -1/0, 1/0))
