-- mlsh plan MODEL [--json] — a compute plan for every function, keyed like coremltools'
-- MLComputePlan (preferred_compute_device, supported_compute_devices, estimated_cost.weight) plus
-- mlsh's reasons. docs/plan.md; the JSON validates against docs/plan.schema.json.
-- Exit status: 0 ok, 2 bad usage, an unreadable model, an ONNX model, an unwritable -o file.
local mlsh = require "mlsh"

local C = {
  summary = "compute-plan JSON for every function (MLComputePlan keys: preferred/supported devices, cost)",
  usage = "mlsh plan MODEL [--json] [--compute-units all|cpu_and_ne|cpu_and_gpu|cpu_only] [--target iOS17] [--static] [-o FILE]",
}

local function fail(msg)
  io.stderr:write("mlsh plan: ", msg, "\n")
  return 2
end

function C.run(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    if name == "--compute-units" or name == "--target" or name == "-o" or name == "--output" then
      local v = inline
      if v == nil then i = i + 1 v = args[i] end
      if v == nil then return fail(name .. " needs a value\nusage: " .. C.usage) end
      o[({ ["--compute-units"] = "compute_units", ["--target"] = "target", ["-o"] = "output", ["--output"] = "output" })[name]] = v
    elseif a == "--json" then o.json = true
    elseif a == "--static" or a == "--no-calibrated" then o.calibrated = false -- placement's first stage only
    elseif a == "--calibrated" then o.calibrated = true -- the default
    elseif a == "-h" or a == "--help" then print("usage: " .. C.usage) return 0
    elseif a:sub(1, 1) == "-" and a ~= "-" then return fail("unknown option " .. a .. "\nusage: " .. C.usage)
    else
      if o.path then return fail("one model at a time\nusage: " .. C.usage) end
      o.path = a
    end
    i = i + 1
  end
  if not o.path then return fail("no model given\nusage: " .. C.usage) end
  local cu, cerr = mlsh.placement.compute_units(o.compute_units)
  if not cu then return fail(cerr) end
  local target
  if o.target then
    local n, tname = require("mlsh.cli.args").parse_target(o.target)
    if not n then return fail(tname) end
    target = n
  end
  local m, err = mlsh.try_load(o.path)
  if not m then io.stderr:write("mlsh: ", err, "\n") return 2 end
  local plan = require "mlsh.plan"
  local ok, text = pcall(function()
    local t = plan.build(m, { compute_units = cu, target = target, calibrated = o.calibrated })
    if o.json then return mlsh.json.encode(plan.to_json(t), true) .. "\n" end
    return plan.text(t)
  end)
  m:close()
  if not ok then
    local e = tostring(text)
    io.stderr:write("mlsh: ", e:find(o.path, 1, true) and e or (o.path .. ": " .. e), "\n")
    return 2
  end
  if o.output then
    local wok, werr = mlsh.core.fs.write_atomic(o.output, text)
    if not wok then return fail(o.output .. ": " .. tostring(werr)) end
  else
    io.write(text)
  end
  return 0
end

return C
