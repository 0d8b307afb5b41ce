-- mlsh decompress MODEL -o OUT [--in-place] — replace every constexpr chain (mlsh's or
-- coremltools' compression) by a const holding its dense values, restoring the original const
-- names (<w>_palettized -> <w>) when they are free. The spec version is kept. Exit 0 ok, 1 model
-- unreadable or write failure, 2 bad usage.
local mlsh = require "mlsh"
local json = mlsh.json
local compress = require "mlsh.compress"
local wcmd = require "mlsh.cmd.weights"

local C = { summary = "write a compressed model back with dense weights",
            usage = "mlsh decompress MODEL (-o OUT | --in-place) [--json] [--quiet]" }

function C.run(args)
  local paths, out, in_place, as_json, quiet = {}, nil, false, false, false
  local i = 1
  while args[i] do
    local a = args[i]
    if a == "-o" or a == "--output" then
      out = args[i + 1]
      if not out then io.stderr:write("mlsh decompress: -o needs a path\n") return 2 end
      i = i + 1
    elseif a == "--in-place" then in_place = true
    elseif a == "--json" then as_json = true
    elseif a == "--quiet" or a == "-q" then quiet = true
    elseif a == "-h" or a == "--help" then print("usage: " .. C.usage) return 0
    elseif a:sub(1, 1) == "-" then io.stderr:write("mlsh decompress: unknown option ", a, "\nusage: ", C.usage, "\n") return 2
    else paths[#paths + 1] = a end
    i = i + 1
  end
  if #paths ~= 1 or (out == nil) == (not in_place) then io.stderr:write("usage: ", C.usage, "\n") return 2 end
  out = out or paths[1]
  local m, err = mlsh.try_load(paths[1])
  if not m then io.stderr:write("mlsh: ", err, "\n") return 1 end
  local ok, spec, read_blob, report = pcall(compress.decompress, m, { quiet = quiet or as_json })
  if not ok then
    m:close()
    if type(spec) == "table" and spec.usage then io.stderr:write("mlsh decompress: ", spec.msg, "\n") return 2 end
    io.stderr:write("mlsh: ", paths[1], ": ", tostring(spec), "\n")
    return 1
  end
  local sok, serr = pcall(require("mlsh.model.writer").save, spec, read_blob, out, { source = m.path, in_place = in_place })
  m:close()
  if not sok then io.stderr:write("mlsh: ", tostring(serr), "\n") return 1 end
  if as_json then
    local rows = {}
    for k, r in ipairs(report.weights) do rows[k] = r end
    print(json.encode({ path = paths[1], output = out, spec_version = report.spec, weights = json.array(rows) }, true))
  elseif not quiet then
    local cells, before, after, skipped = {}, 0, 0, {}
    for _, r in ipairs(report.weights) do
      if r.skipped then
        skipped[#skipped + 1] = string.format("  left compressed: %s (%s)", r.name, r.skipped)
      else
        cells[#cells + 1] = { r.name, r.restored, tostring(r.kind), wcmd.fmt_bytes(r.bytes_before) .. " -> " .. wcmd.fmt_bytes(r.bytes_after) }
        before, after = before + (r.bytes_before or 0), after + (r.bytes_after or 0)
      end
    end
    for _, l in ipairs(skipped) do print(l) end
    if #cells > 0 then print(wcmd.table({ "compressed", "dense const", "was", "bytes" }, cells)) end
    print(string.format("%d weights decompressed (%s -> %s); wrote %s", #cells, wcmd.fmt_bytes(before), wcmd.fmt_bytes(after), out))
  end
  return 0
end

return C
