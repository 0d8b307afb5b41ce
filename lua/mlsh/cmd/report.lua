-- mlsh report MODEL -o report.html — one self-contained HTML page (inline CSS/JS/SVG, no network):
-- summary, findings with severity filters, the device-coloured graph, segment timeline, weights
-- with histograms (and SNR against --against ORIGINAL), required spec, ONNX EP partitions; for an
-- ExecuTorch .pte, one tab per delegate.
-- docs/report.md. Exit status: 0 written, 2 bad usage, an unreadable model, an unwritable file.
local mlsh = require "mlsh"
local argparse = require "mlsh.cli.args"

local C = {
  summary = "a self-contained HTML report (graph, timeline, findings, weights) of a model",
  usage = "mlsh report MODEL -o REPORT.html [--against ORIGINAL] [--compute-units all|cpu_and_ne|cpu_and_gpu|cpu_only]\n"
    .. "                   [--static]",
}

local function fail(msg)
  io.stderr:write("mlsh report: ", msg, "\n")
  return 2
end

local OPTS = {
  values = { ["-o"] = "output", ["--output"] = "output", ["--against"] = "against", ["--compute-units"] = "compute_units" },
  flags = argparse.PLACEMENT_FLAGS,
}

function C.run(args)
  local o, rc = argparse.one_model("report", C, args, OPTS)
  if not o then return rc end
  if not o.output then return fail("no output file (-o REPORT.html)\nusage: " .. C.usage) end
  local cu, cerr = mlsh.placement.compute_units(o.compute_units)
  if not cu then return fail(cerr) end
  local m, err = mlsh.try_load(o.path)
  if not m then io.stderr:write("mlsh: ", err, "\n") return 2 end
  local against
  if o.against then
    against, err = mlsh.try_load(o.against)
    if not against then m:close() io.stderr:write("mlsh: ", err, "\n") return 2 end
  end
  local ok, page = pcall(function()
    local html = require "mlsh.report.html"
    if m.format ~= "pte" then return html.report(m, { compute_units = cu, against = against, calibrated = o.calibrated }) end
    -- an ExecuTorch program: one tab per delegate (the Core ML ones as reports of their payload)
    local tabs = {}
    for _, d in ipairs(m:delegates()) do
      local label = string.format("%s / delegate %d (%s)", d.method, d.index, d.backend)
      if d.is_coreml then
        tabs[#tabs + 1] = { label = label, html = html.report(assert(d:model()), { compute_units = cu, calibrated = o.calibrated }) }
      else
        tabs[#tabs + 1] = { label = label, note = label .. ": not a Core ML delegate, nothing for mlsh to show" }
      end
    end
    if #tabs == 0 then error(o.path .. ": the program has no delegate", 0) end
    return html.tabs("mlsh report: " .. o.path, tabs)
  end)
  m:close()
  if against then against:close() end
  if not ok then
    local e = tostring(page)
    io.stderr:write("mlsh: ", e:find(o.path, 1, true) and e or (o.path .. ": " .. e), "\n")
    return 2
  end
  local wok, werr = mlsh.core.fs.write_atomic(o.output, page)
  if not wok then return fail(o.output .. ": " .. tostring(werr)) end
  return 0
end

return C
