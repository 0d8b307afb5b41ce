-- The conversion checklist: the order that gets a model onto the Neural Engine with the least
-- rework. Items about the converted file are checked; steps done outside it are asked.
local pb = require "mlsh.engine.playbook"

local function coremltools_major(ctx)
  local ver = ctx:converter()
  if not ver then return nil end
  return tonumber(tostring(ver):match("^(%d+)")), ver
end

return {
  id = "conversion",
  title = "Conversion checklist",
  description = "from a PyTorch model to a shippable Core ML model",
  items = {
    {
      id = "fresh-environment",
      text = "Converted with a current coremltools (7 or later) in a fresh environment",
      check = function(m, ctx)
        local major, ver = coremltools_major(ctx)
        if not ver then return nil, "no coremltools version in the metadata" end
        if not major then return nil, "coremltools version '" .. ver .. "' is not a number" end
        if major < 7 then return "fail", "converted with coremltools " .. ver end
        return "pass", "coremltools " .. ver .. " (the environment itself is not in the file)"
      end,
      ask = "Was the model converted with a current coremltools in a fresh environment?",
      fix = "python -m venv fresh; pip install -U coremltools and a torch version it supports",
    },
    {
      id = "ane-friendly",
      text = "ANE-friendly structure: nothing the Neural Engine cuts on (gather, dilated conv, LSTM, custom layers, fp32)",
      check = function(m, ctx)
        local p = ctx:placement()
        if #p.ops == 0 then return nil, "no neural network ops" end
        if #p.cut_makers == 0 then return "pass", "no ops predicted off the Neural Engine" end
        local top = {}
        for i, c in ipairs(p.cut_makers) do
          if i > 3 then break end
          top[#top + 1] = string.format("%s x%d (%s)", c.type, c.count, c.why)
        end
        return "fail", "cut-makers: " .. table.concat(top, ", ")
      end,
      fix = "restructure the source model around the cut-makers (mlsh check lists a fix for each)",
    },
    {
      id = "fp16-mlprogram",
      text = "Traced in fp32, converted to an fp16 ML program for iOS17 or later",
      check = function(m, ctx)
        local missing = {}
        if m.model_type ~= "mlProgram" then missing[#missing + 1] = "not an ML program (" .. tostring(m.model_type) .. ")" end
        if ctx:finding("fp32-compute") then missing[#missing + 1] = "fp32 compute ops" end
        if (m.spec_version or 0) < 8 then missing[#missing + 1] = "spec " .. tostring(m.spec_version) .. " < 8 (iOS17)" end
        if #missing > 0 then return "fail", table.concat(missing, "; ") end
        local c = ctx:compute_dtypes()
        return "pass", string.format("fp16 ML program, spec %d, %d fp16 compute ops", m.spec_version, c.fp16)
      end,
      fix = "ct.convert(traced, convert_to='mlprogram', compute_precision=ct.precision.FLOAT16, minimum_deployment_target=ct.target.iOS17)",
    },
    {
      id = "sanity-predict",
      text = "A prediction on a real input matches the source model",
      ask = "Did mlmodel.predict on a real input match the source model's output?",
      fix = "compare mlmodel.predict(x) with the source model on a Mac before anything else",
    },
    {
      id = "profile",
      text = "Profiled on a device (Xcode performance report or MLComputePlan)",
      check = function(m, ctx)
        local p = ctx:placement()
        return nil, string.format("predicted: ANE coverage %s of ops", pb.pct(p.ane_coverage.ops))
      end,
      ask = "Was the converted model profiled on a device?",
      fix = "open the model in Xcode, Performance tab, on the target device",
    },
    {
      id = "full-ane",
      text = "Iterated until (nearly) every op runs on the Neural Engine",
      check = function(m, ctx)
        local p = ctx:placement()
        if #p.ops == 0 then return nil, "no neural network ops" end
        local cov = p.ane_coverage
        local ev = string.format("predicted ANE coverage %s of ops, %s of work, %d segment(s)", pb.pct(cov.ops),
          pb.pct(cov.work), #p.segments)
        if cov.ops >= 0.99 then return "pass", ev end
        return "fail", ev
      end,
      fix = "fix the top cut-maker, re-convert, re-check; repeat",
    },
    {
      id = "quantize",
      text = "Weights quantized or palettized where accuracy allows",
      check = function(m, ctx)
        local status, ev = pb.compressed_weights(ctx)
        if status then return status, ev end
        local f = ctx:finding("weights-memory")
        if f then return "fail", "not compressed, and " .. f.message end
        return nil, "not compressed; " .. pb.fmt_bytes(ctx:weight_bytes()) .. " of weights"
      end,
      ask = "Was weight compression tried and its accuracy measured?",
      fix = "coremltools.optimize.coreml: palettize_weights / linear_quantize_weights, then re-run the accuracy test",
    },
    {
      id = "package",
      text = "Packaged as an .mlpackage with metadata (description, author, license, version)",
      check = function(m, ctx)
        local missing = {}
        if m.format == "mlmodel" and m.model_type == "mlProgram" then missing[#missing + 1] = "not an .mlpackage" end
        local md = m.metadata or {}
        for _, k in ipairs({ "short_description", "author", "license", "version" }) do
          if not md[k] or md[k] == "" then missing[#missing + 1] = "no " .. k end
        end
        if #missing > 0 then return "fail", table.concat(missing, ", ") end
        return "pass", string.format("%s, %s, version %s", m.format, md.author, md.version)
      end,
      fix = "set mlmodel.short_description / author / license / version before mlmodel.save(\"Model.mlpackage\")",
    },
  },
}
