-- string.format compared with PUC Lua 5.4.
print(pcall(string.format, "%u", 5))
print(string.format("%5.2f|%-5d|%05d|%+d|% d|%x|%X|%o|%#x|%#o|%e|%E|%g|%G|%g|%g|%g", 3.14159, 42, 42, 42, 42, 255, 255, 8, 255, 8, 12345.678, 0.000123, 0.0001, 1e20, 100000, 1000000, 0.5))
print(string.format("%q", 'he said "hi"\n\0end\1x'), string.format("%q", 1/0), string.format("%q", 7), string.format("%q", 0.5))
print(string.format("%s %s %s %.3s %10s|%-10s|", nil, true, 1.5, "abcdef", "hi", "hi"))
print(string.format("%c%c%c", 76, 117, 97), string.format("%a", 1.0), string.format("%5.1s|", "xyz"))
print(string.format("%.0f %.0f %.10g %g %g", 0.5, 1.5, 1/3, 1e-5, 123456789))
print(pcall(string.format, "%d", 3.5))
print(string.format("%d", "10"), string.format("%.3d", 7), string.format("%i", 3.0))
print(pcall(string.format, "%y", 1))
print(pcall(string.format, "%d"))
print(string.format("[%-8.3f] [%+.2e] [%g] [%g] [%10.4g] [%5.1f] [%08.3f] [%-+6d]", 3.14159, 12345.6789, 100, 1e-10, 3.14159265, -0.05, -3.14159, 7))
print(string.format("%.14g %.3g %g %g %#g %#.3x", 0.1, 2.5e-7, 2^53, -0.0, 1.0, 10))
print(string.format("%s|%10.2s|%-3s|", "é", "abc", "abcdef"), string.format("%%d %d%%", 5))
print(string.format("%q", "tab\there\r\n\\ and \0009"), string.format("%q", math.mininteger))
-- Specifications as lstrlib checks them.
for _, f in ipairs{"%#i", "%3.1p", "%0.s", "%10q", "%F", "%-5y", "%123d", "%5.2s|", "%-+8.3e", "%#o", "% d"} do
  print(f, pcall(string.format, f, 12))
end
print(pcall(string.format, "%.3s", "a\0bc"), pcall(string.format, "%"))
print(string.format("%10p|%p", 1, nil), string.format("%p", {}) ~= string.format("%p", {}))
