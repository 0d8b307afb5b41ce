-- The diagnostic checklist: what to establish before (or while) chasing a Core ML problem. The
-- file answers most of it; what happened on the device is asked.
local pb = require "mlsh.engine.playbook"
local spec = require "mlsh.spec"

return {
  id = "diagnostic",
  title = "Diagnostic checklist",
  description = "facts to collect when a Core ML model misbehaves",
  items = {
    {
      id = "readable",
      text = "The model file reads and its weight file is complete",
      check = function(m, ctx)
        local ok, info = pcall(m.info, m)
        if not ok then return "fail", (tostring(info):gsub("\n.*", "")) end
        if info.weights.missing_files then return "fail", "missing: " .. table.concat(info.weights.missing_files, ", ") end
        return "pass", string.format("%s, %d weight(s), %s", m.format, info.weights.count, pb.fmt_bytes(info.weights.bytes))
      end,
      fix = "re-export or re-download the model; ship the whole package",
    },
    {
      id = "spec-vs-target",
      text = "The model's spec version runs on the failing OS (--target)",
      check = function(m, ctx)
        local need = spec.target_name(m.spec_version) or "?"
        if not ctx.target then return nil, "the model needs " .. need .. " or later; give --target" end
        if m.spec_version > ctx.target then
          return "fail", string.format("spec %d needs %s; %s runs up to spec %d", m.spec_version, need, ctx.target_name, ctx.target)
        end
        return "pass", string.format("spec %d within %s", m.spec_version, ctx.target_name)
      end,
      ask = "Does the failing device run an OS at least as new as the model needs?",
      fix = "re-convert with minimum_deployment_target = the device's OS",
    },
    {
      id = "load-blockers",
      text = "No load blockers: every op in its opset, no custom layers, shapes within limits",
      check = function(m, ctx)
        local found = {}
        for _, id in ipairs({ "op-not-in-opset", "custom-layers", "layout-limits" }) do
          for _, f in ipairs(ctx:findings(id)) do
            if f.severity ~= "info" then found[#found + 1] = id .. ": " .. f.message end
          end
        end
        if #found > 0 then return "fail", table.concat(found, "; ") end
        return "pass", "none found"
      end,
      fix = "see mlsh diagnose MODEL --symptom load-failure",
    },
    {
      id = "compute-units-isolated",
      text = "Tried .cpuOnly, .cpuAndGPU and .all on the device to isolate the failing unit",
      ask = "Did you run the model with .cpuOnly, .cpuAndGPU and .all on the device?",
      fix = "set MLModelConfiguration.computeUnits to each in turn",
    },
    {
      id = "ane-coverage",
      text = "Predicted Neural Engine coverage is at least 80% of the work",
      check = function(m, ctx)
        local p = ctx:placement()
        if #p.ops == 0 then return nil, "no neural network ops" end
        local ev = string.format("%s of work, %s of ops", pb.pct(p.ane_coverage.work), pb.pct(p.ane_coverage.ops))
        if p.ane_coverage.work >= 0.8 then return "pass", ev end
        return "fail", ev
      end,
      fix = "mlsh check MODEL lists the cut-makers and their fixes",
    },
    {
      id = "fp16",
      text = "Computes in fp16 on the GPU / Neural Engine",
      check = function(m, ctx)
        local f = ctx:finding("fp32-compute")
        if f then return "fail", f.message end
        if ctx:is_program() then
          local c = ctx:compute_dtypes()
          return "pass", string.format("%d fp16 compute ops", c.fp16)
        end
        if ctx:is_nn() then return "pass", "NeuralNetwork: fp16 on GPU/ANE by default" end
        return nil, "not a neural model"
      end,
      fix = "convert with compute_precision=ct.precision.FLOAT16",
    },
    {
      id = "shapes",
      text = "Input shapes are fixed or enumerated",
      check = function(m, ctx)
        local f = ctx:finding("range-shapes")
        if f then return "fail", f.message end
        return "pass", #ctx:flexible_inputs().enumerated > 0 and "enumerated shapes" or "fixed shapes"
      end,
      fix = "use ct.EnumeratedShapes",
    },
    {
      id = "memory",
      text = "The weights fit the memory budget",
      check = function(m, ctx)
        local f = ctx:finding("weights-memory")
        if f then return "fail", f.message end
        return "pass", pb.fmt_bytes(ctx:weight_bytes()) .. " of weights"
      end,
      fix = "see mlsh diagnose MODEL --symptom high-memory",
    },
    {
      id = "converter-version",
      text = "The converter version is recorded (coremltools version in the metadata)",
      check = function(m, ctx)
        local ver, src = ctx:converter()
        if ver then return "pass", "coremltools " .. ver .. (src and (" from " .. src) or "") end
        return "fail", "no com.github.apple.coremltools.version in the metadata"
      end,
      fix = "keep the metadata coremltools writes (do not strip user_defined metadata)",
    },
    {
      id = "device-report",
      text = "A performance report or MLComputePlan from the failing device is at hand",
      ask = "Do you have the Xcode performance report / MLComputePlan from the failing device?",
      fix = "Xcode: open the model, Performance tab, run on the device",
    },
    {
      id = "on-device",
      text = "The problem is reproduced on a physical device, not only the simulator",
      ask = "Was the problem reproduced on a physical device?",
      fix = "run on the device; the simulator uses the Mac's CPU (see mlsh diagnose --symptom works-in-simulator-not-device)",
    },
  },
}
