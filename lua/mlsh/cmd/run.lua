-- mlsh run MODEL [--input NAME=FILE(.npy, or .png for image inputs)]... [--random SEED] [--shape NAME=1x3x224x224]... [--function F]
--   [--delegate N | METHOD:N] (a Core ML delegate of an ExecuTorch .pte, or a model of an ORT cache)
--   [--precision model|fp32|fp16] [-o DIR] [--json] [--trace DIR] [--memory-budget BYTES[K|M|G]]
-- mlsh run --list-ops
-- Runs an ML program function (or a NeuralNetwork, tree ensemble, GLM or pipeline model) on the C interpreter; writes <output>.npy files to -o DIR (and the
-- final value of each state), prints per-output statistics, the first op with non-finite values
-- and, in fp32 runs, the first op with values beyond the fp16 range. Exit 1 on any error.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local run = require "mlsh.run"
local argparse = require "mlsh.cli.args"
local json = mlsh.json

local C = {
  summary = "run an ML program or NeuralNetwork/tree/GLM/pipeline model on the reference interpreter (outputs as .npy)",
  usage = "mlsh run MODEL [--input NAME=FILE]... [--random SEED] [--shape NAME=AxBxC]... [--function F] "
    .. "[--delegate N] [--precision model|fp32|fp16] [-o DIR] [--json] [--trace DIR] [--memory-budget N[K|M|G]] | mlsh run --list-ops",
}

local function fail(msg) io.stderr:write("mlsh run: ", msg, "\n") return 1 end

local function parse(args)
  local o = { inputs = {}, shapes = {}, precision = "model" }
  local i = 1
  local function val()
    i = i + 1
    if not args[i] then error("option " .. args[i - 1] .. " needs a value", 0) end
    return args[i]
  end
  while i <= #args do
    local a = args[i]
    if a == "--input" or a == "-i" then
      local k, v = val():match("^([^=]+)=(.+)$")
      if not k then error("--input takes NAME=FILE", 0) end
      o.inputs[k] = v
    elseif a == "--random" then o.random = math.tointeger(tonumber(val())) or error("--random takes an integer seed", 0)
    elseif a == "--shape" then
      local k, v = val():match("^([^=]+)=([%dx]+)$")
      if not k then error("--shape takes NAME=AxBxC", 0) end
      local s = {}
      for d in v:gmatch("%d+") do s[#s + 1] = math.tointeger(tonumber(d)) end
      o.shapes[k] = s
    elseif a == "--function" then o.fn = val()
    elseif a == "--delegate" then o.delegate = val()
    elseif a == "--precision" then
      o.precision = val()
      if o.precision ~= "model" and o.precision ~= "fp32" and o.precision ~= "fp16" then error("--precision is model, fp32 or fp16", 0) end
    elseif a == "-o" or a == "--output" then o.out = val()
    elseif a == "--json" then o.json = true
    elseif a == "--trace" then o.trace = val()
    elseif a == "--memory-budget" then o.budget = argparse.parse_size(val()) or error("--memory-budget takes N[K|M|G]", 0)
    elseif a == "--list-ops" then o.list = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" then error("unknown option " .. a, 0)
    elseif o.model then error("one model at a time", 0)
    else o.model = a end
    i = i + 1
  end
  return o
end

local function shape_str(s) return table.concat(s, "x") end

local function write_trace(dir, info)
  local entries = {}
  for _, t in ipairs(info.trace) do
    local outs = {}
    for _, o in ipairs(t.outputs) do
      outs[#outs + 1] = { file = o.file, dtype = o.dtype, shape = json.array(o.shape or {}), stats = o.stats }
    end
    entries[#entries + 1] = { op = t.op, type = t.type, outputs = json.array(outs) }
  end
  local doc = { ops = json.array(entries), first_nonfinite = info.nonfinite or json.null,
                first_fp16_overflow = info.fp16_overflow or json.null }
  local ok, err = core.fs.write_atomic(dir .. "/index.json", json.encode(doc, true) .. "\n")
  if not ok then error(err, 0) end
end

local function report(o, m, outs, info, names)
  local doc = { model = o.model, ["function"] = info["function"], precision = o.precision, seconds = info.seconds, outputs = {} }
  for _, k in ipairs(names) do
    local t = outs[k]
    local s = t:stats()
    doc.outputs[k] = { shape = json.array(t:shape()), dtype = t:dtype(), min = s.min, max = s.max, mean = s.mean, std = s.std, nan = s.nan, inf = s.inf }
    if info.labels[k] then doc.outputs[k].labels = json.array(t:labels()) end
  end
  doc.first_nonfinite = info.nonfinite or json.null
  doc.first_fp16_overflow = info.fp16_overflow or json.null
  if o.json then print(json.encode(doc, true)) return end
  print(string.format("%s (function %s, precision %s): %.1f ms", o.model, info["function"], o.precision, info.seconds * 1000))
  for _, k in ipairs(names) do
    local d = doc.outputs[k]
    if d.labels then print(string.format("  %s: %s", k, table.concat(outs[k]:labels(), ", ")))
    else
      print(string.format("  %s: %s[%s] min %.6g max %.6g mean %.6g std %.6g%s", k, d.dtype, shape_str(outs[k]:shape()), d.min, d.max, d.mean, d.std,
        (d.nan + d.inf > 0) and string.format(" (%d NaN, %d inf)", d.nan, d.inf) or ""))
    end
  end
  if info.nonfinite then print(string.format("  first non-finite values: op %s (%s)", info.nonfinite.op, info.nonfinite.type)) end
  if info.fp16_overflow then print(string.format("  first values beyond fp16 range (|x| > 65504): op %s (%s)", info.fp16_overflow.op, info.fp16_overflow.type)) end
  local _ = m
end

function C.run(args)
  local ok, o = pcall(parse, args)
  if not ok then io.stderr:write("mlsh run: ", o, "\nusage: ", C.usage, "\n") return 2 end
  if o.help then print("usage: " .. C.usage) return 0 end
  if o.list then
    for _, n in ipairs(core.interp.ops()) do print(n) end
    print("")
    print("NeuralNetwork layers:")
    for _, n in ipairs(core.interp.nn_layers()) do print(n) end
    print("")
    print("models: treeEnsembleClassifier treeEnsembleRegressor glmClassifier glmRegressor pipeline pipelineClassifier")
    print("        pipelineRegressor; in pipelines: scaler imputer normalizer featureVectorizer oneHotEncoder arrayFeatureExtractor")
    return 0
  end
  if not o.model then io.stderr:write("usage: ", C.usage, "\n") return 2 end
  local m, err = mlsh.try_load(o.model, o.delegate and { delegate = o.delegate } or nil)
  if not m then return fail(err) end
  for _, dir in ipairs({ o.out or false, o.trace or false }) do
    local okd, e = true, nil
    if dir then okd, e = core.fs.mkdir_p(dir) end
    if not okd then m:close() return fail(e) end
  end
  local okr, outs, info = pcall(run.run, m, o.inputs, { precision = o.precision, fn = o.fn, random = o.random,
    shapes = o.shapes, trace = o.trace, memory_budget = o.budget })
  if not okr then m:close() return fail(tostring(outs)) end
  local names = {}
  for k in pairs(outs) do names[#names + 1] = k end
  table.sort(names)
  local okw, werr = pcall(function()
    if o.out then
      for _, k in ipairs(names) do
        if not info.labels[k] then -- a classifier's label goes to the report, not to a .npy
          local w, e = outs[k]:save(o.out .. "/" .. k .. ".npy")
          if not w then error(e, 0) end
        end
      end
      for k, t in pairs(info.states) do
        local w, e = t:save(o.out .. "/" .. k .. ".npy")
        if not w then error(e, 0) end
      end
    end
    if o.trace then write_trace(o.trace, info) end
  end)
  if not okw then m:close() return fail(tostring(werr)) end
  report(o, m, outs, info, names)
  m:close()
  return 0
end

return C
