-- mlsh plan MODEL [--json] — a compute plan for every function, keyed like coremltools'
-- MLComputePlan (preferred_compute_device, supported_compute_devices, estimated_cost.weight) plus
-- mlsh's reasons. docs/plan.md; the JSON validates against docs/plan.schema.json.
-- Exit status: 0 ok, 2 bad usage, an unreadable model, an ONNX model, an unwritable -o file.
local mlsh = require "mlsh"
local argparse = require "mlsh.cli.args"

local C = {
  summary = "compute-plan JSON for every function (MLComputePlan keys: preferred/supported devices, cost)",
  usage = "mlsh plan MODEL [--json] [--compute-units all|cpu_and_ne|cpu_and_gpu|cpu_only] [--target iOS17] [--static] [-o FILE]",
}

local function fail(msg)
  io.stderr:write("mlsh plan: ", msg, "\n")
  return 2
end

local OPTS = {
  values = { ["--compute-units"] = "compute_units", ["--target"] = "target", ["-o"] = "output", ["--output"] = "output" },
  flags = setmetatable({ ["--json"] = { "json", true } }, { __index = argparse.PLACEMENT_FLAGS }),
}

function C.run(args)
  local o, rc = argparse.one_model("plan", C, args, OPTS)
  if not o then return rc end
  local cu, cerr = mlsh.placement.compute_units(o.compute_units)
  if not cu then return fail(cerr) end
  local target
  if o.target then
    local n, tname = argparse.parse_target(o.target)
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
