-- make conformance: every model in ../shared/corpus/coreml*/ through `mlsh info --json`, compared
-- with the ground truth in its .facts.json (made by other tools; see the corpus FACTS.md files).
-- Prints each disagreement and the agreement per folder. Exit status: 0 unless mlsh crashed or
-- hung on some model (disagreements are reported, not fatal, as CI wants).
local json = require "mlsh.json"
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local C = require "common"

local corpus = arg[1] or "../shared/corpus"
local bin, TIMEOUT, sh, readjson = C.bin, C.TIMEOUT, C.sh, C.readjson
C.require_corpus(corpus, "conformance")

local KIND = { multiArrayType = "multiArray", imageType = "image", doubleType = "double", int64Type = "int64",
  stringType = "string", dictionaryType = "dictionary", sequenceType = "sequence", stateType = "state" }
local DTYPE = { FLOAT32 = "fp32", DOUBLE = "fp64", FLOAT16 = "fp16", INT32 = "int32", INT8 = "int8" }
local COLOR = { RGB = "rgb", BGR = "bgr", GRAYSCALE = "grayscale", GRAYSCALE_FLOAT16 = "grayscale_fp16" }
local TAG = { ios15 = "CoreML5", ios16 = "CoreML6", ios17 = "CoreML7", ios18 = "CoreML8" }

-- ---- comparison helpers -----------------------------------------------------------------------------
local Check = {}
Check.__index = Check
local function new_check(name) return setmetatable({ name = name, diffs = {}, n = 0 }, Check) end

local function show(v) return type(v) == "table" and json.encode(v) or tostring(v) end
local function same(a, b)
  if type(a) ~= type(b) then
    if (a == nil or a == json.null) and (b == nil or b == json.null) then return true end
    return false
  end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k, v in pairs(b) do if not same(a[k], v) then return false end end
  return true
end

function Check:eq(what, want, got)
  self.n = self.n + 1
  if not same(want, got) then
    self.diffs[#self.diffs + 1] = string.format("%s: facts %s, mlsh %s", what, show(want), show(got))
  end
end

local function hist_of(list, key)
  local h = {}
  for _, x in ipairs(list or {}) do h[x[key]] = (h[x[key]] or 0) + 1 end
  return h
end

local function features(c, what, want, got)
  want, got = want or {}, got or {}
  c:eq(what .. " count", #want, #got)
  for i, w in ipairs(want) do
    local g = got[i] or {}
    local p = string.format("%s[%d] %s", what, i, tostring(w.name))
    c:eq(p .. " name", w.name, g.name)
    c:eq(p .. " kind", KIND[w.kind] or w.kind, g.kind)
    c:eq(p .. " optional", w.optional, g.optional)
    local dt = w.dtype or w.dataType
    if dt then c:eq(p .. " dtype", DTYPE[dt] or dt, g.dtype) end
    if w.shape then c:eq(p .. " shape", w.shape, g.shape) end
    if w.kind == "imageType" then
      c:eq(p .. " width", w.width, g.width)
      c:eq(p .. " height", w.height, g.height)
      c:eq(p .. " color", COLOR[w.colorSpace] or w.colorSpace, g.color_space)
    end
    local flex = g.flexibility ~= json.null and g.flexibility or nil
    if w.shapeRange or w.flexibility == "shapeRange" then
      c:eq(p .. " flexibility", { kind = "range", ranges = w.shapeRange }, flex)
    elseif w.enumeratedShapes or w.flexibility == "enumeratedShapes" then
      c:eq(p .. " flexibility", { kind = "enumerated", shapes = w.enumeratedShapes }, flex)
    elseif w.kind == "multiArrayType" and (w.flexibility == nil or w.flexibility == json.null) then
      c:eq(p .. " flexibility", nil, flex)
    end
  end
end

-- facts in the generated corpus' schema (coreml/)
local function compare_generated(c, f, o)
  c:eq("spec_version", f.specificationVersion, o.spec_version)
  c:eq("model_type", f.model_type, o.model_type)
  c:eq("is_updatable", f.isUpdatable, o.is_updatable)
  local d = f.description or {}
  features(c, "inputs", d.inputs, o.inputs)
  features(c, "outputs", d.outputs, o.outputs)
  features(c, "states", d.states, o.states)
  if d.functions and #d.functions > 0 then
    local by = {}
    for _, fn in ipairs(o.functions or {}) do by[fn.name] = fn end
    for _, fd in ipairs(d.functions) do
      local g = by[fd.name] or {}
      features(c, "function " .. fd.name .. " inputs", fd.inputs, g.inputs)
      features(c, "function " .. fd.name .. " outputs", fd.outputs, g.outputs)
      features(c, "function " .. fd.name .. " states", fd.states, g.states)
    end
    c:eq("default_function", d.defaultFunctionName, o.default_function)
  end
  local mp = f.mlProgram
  if mp then
    local names, got = {}, {}
    for _, n in ipairs(mp.function_names) do names[#names + 1] = n end
    for _, fn in ipairs(o.functions or {}) do got[#got + 1] = fn.name end
    table.sort(names)
    table.sort(got)
    c:eq("function names", names, got)
    for name, ff in pairs(mp.functions) do
      local g
      for _, fn in ipairs(o.functions or {}) do if fn.name == name then g = fn end end
      g = g or { ops = {} }
      c:eq(name .. " opset", ff.opset, g.opset)
      c:eq(name .. " block_specializations", ff.block_specializations, g.block_specializations)
      local types = {}
      for i, op in ipairs(g.ops) do types[i] = op.type end
      c:eq(name .. " op sequence", ff.main_block.op_types, types)
      c:eq(name .. " op counts", ff.main_block.op_counts, hist_of(g.ops, "type"))
    end
  end
  local nn = f.neuralNetwork
  if nn then
    local types = {}
    for i, l in ipairs(o.layers or {}) do types[i] = l.type end
    c:eq("layer types", nn.layer_types, types)
    c:eq("layer histogram", nn.layer_type_counts, o.layer_histogram)
  end
  local pipe = f.pipeline
  if pipe then
    local types = {}
    for i, s in ipairs(o.pipeline or {}) do types[i] = s.model_type end
    c:eq("pipeline sub-model types", pipe.sub_model_types, types)
    for i, sub in ipairs(pipe.models or {}) do
      local sc = new_check("")
      compare_generated(sc, sub, (o.pipeline or {})[i] or {})
      for _, dd in ipairs(sc.diffs) do c.diffs[#c.diffs + 1] = "pipeline[" .. i .. "] " .. dd end
      c.n = c.n + sc.n
    end
  end
  if f.package_files then
    local want = {}
    for path, info in pairs(f.package_files) do
      local rel = path:match("^Data/com%.apple%.CoreML/(weights/.*)$")
      if rel then want[#want + 1] = { path = rel, bytes = info.bytes } end
    end
    table.sort(want, function(a, b) return a.path < b.path end)
    c:eq("weight files", want, o.weights and o.weights.files or {})
  end
end

-- facts in the collected corpus' schema (coreml-real/)
local function compare_real(c, f, o)
  if f.kind == "mlmodelc" then
    if f.metadata_json then c:eq("spec_version", f.metadata_json.specificationVersion, o.spec_version) end
    if f.model_mil then
      local want, got = {}, {}
      for _, fn in ipairs(f.model_mil.functions) do want[#want + 1] = { fn[1], TAG[fn[2]] or fn[2] } end
      for _, fn in ipairs(o.functions or {}) do got[#got + 1] = { fn.name, fn.opset } end
      c:eq("functions", want, got)
      c:eq("op histogram", f.model_mil.op_histogram_regex, o.op_histogram)
    end
    if f.espresso_net then c:eq("layer count", f.espresso_net.layer_count, o.layers and #o.layers or 0) end
    return
  end
  local s = f.spec or f
  c:eq("spec_version", s.specificationVersion, o.spec_version)
  c:eq("model_type", s.model_type, o.model_type)
  c:eq("is_updatable", s.isUpdatable, o.is_updatable)
  features(c, "inputs", s.inputs, o.inputs)
  features(c, "outputs", s.outputs, o.outputs)
  if s.nn_layer_histogram then
    c:eq("layer count", s.nn_layer_count, #(o.layers or {}))
    c:eq("layer histogram", s.nn_layer_histogram, o.layer_histogram)
  end
  if s.mil_functions then
    for _, mf in ipairs(s.mil_functions) do
      local g
      for _, fn in ipairs(o.functions or {}) do if fn.name == mf.name then g = fn end end
      g = g or {}
      c:eq(mf.name .. " opset", mf.opset, g.opset)
      c:eq(mf.name .. " op count", mf.op_count, g.op_count)
    end
    c:eq("op histogram", s.mil_op_histogram, o.op_histogram)
  end
  if s.pipeline_models then
    c:eq("pipeline length", #s.pipeline_models, #(o.pipeline or {}))
    for i, sub in ipairs(s.pipeline_models) do
      local sc = new_check("")
      compare_real(sc, sub, (o.pipeline or {})[i] or {})
      for _, dd in ipairs(sc.diffs) do c.diffs[#c.diffs + 1] = "pipeline[" .. i .. "] " .. dd end
      c.n = c.n + sc.n
    end
  end
  if s.tree_count then
    c:eq("tree count", s.tree_count, o.trees and o.trees.trees)
    c:eq("tree nodes", s.tree_node_count, o.trees and o.trees.nodes)
  end
  if f.weights then
    local want = {}
    for _, w in ipairs(f.weights) do want[#want + 1] = { path = w.path:gsub("^Data/com%.apple%.CoreML/", ""), bytes = w.bytes } end
    c:eq("weight files", want, o.weights and o.weights.files or {})
  end
end

-- ---- run ------------------------------------------------------------------------------------------
local crashed, verbose = 0, os.getenv("VERBOSE")
local function models_in(dir)
  local out = {}
  for i, e in ipairs(C.models_in(dir)) do out[i] = e.model end
  return out
end

local total_ok, total = 0, 0
for _, folder in ipairs({ "coreml", "coreml-real" }) do
  local dir = corpus .. "/" .. folder
  local models = models_in(dir)
  local agree = 0
  for _, model in ipairs(models) do
    local facts = readjson(dir .. "/" .. model .. ".facts.json") or readjson(dir .. "/" .. model:gsub("%.%w+$", "") .. ".facts.json")
    local out, code = sh(string.format("timeout %d %s info --json '%s/%s' 2>&1", TIMEOUT, bin, dir, model))
    local c = new_check(model)
    if code >= 124 then
      crashed = crashed + 1
      c.diffs[1] = (code == 124 and "HANG" or "CRASH") .. " (exit " .. code .. "): " .. out:sub(1, 200)
    elseif code ~= 0 then
      c.diffs[1] = "mlsh could not read it: " .. out:gsub("\n$", "")
    else
      local ok, o = pcall(json.decode, out)
      if not ok then c.diffs[1] = "output is not JSON: " .. tostring(o)
      elseif folder == "coreml" then compare_generated(c, facts, o)
      else compare_real(c, facts, o) end
    end
    if #c.diffs == 0 then
      agree = agree + 1
      if verbose then print(string.format("  ok    %s/%s (%d checks)", folder, model, c.n)) end
    else
      print(string.format("  DIFF  %s/%s", folder, model))
      for i, d in ipairs(c.diffs) do
        if i > 8 then print(string.format("        ... %d more", #c.diffs - 8)) break end
        print("        " .. d)
      end
    end
  end
  print(string.format("conformance %s: %d/%d models agree (%.1f%%)", folder, agree, #models,
    #models > 0 and 100 * agree / #models or 100))
  total_ok, total = total_ok + agree, total + #models
end
print(string.format("conformance total: %d/%d models agree", total_ok, total))

-- Round trip: load -> save -> reload gives the same `info --json` (paths and container aside).
-- ML programs are saved as .mlpackage, everything else as .mlmodel.
local tmp = os.getenv("TMPDIR") or "/tmp"
local rt_dir = sh("mktemp -d " .. tmp .. "/mlsh-rt.XXXXXX"):gsub("%s+$", "")
local function strip(o)
  if type(o) ~= "table" then return o end
  o.path, o.format = nil, nil
  for _, v in pairs(o) do strip(v) end
  return o
end
for _, folder in ipairs({ "coreml", "coreml-real" }) do
  local dir = corpus .. "/" .. folder
  local ok_n, n, skipped = 0, 0, 0
  for _, model in ipairs(models_in(dir)) do
    local src = dir .. "/" .. model
    local a, code = sh(string.format("timeout %d %s info --json '%s' 2>/dev/null", TIMEOUT, bin, src))
    if code == 0 then
      n = n + 1
      local o = json.decode(a)
      local dst = rt_dir .. "/" .. model:gsub("%.zip$", ""):gsub("%.%w+$", "") .. (o.model_type == "mlProgram" and ".mlpackage" or ".mlmodel")
      local msg, c2 = sh(string.format("timeout %d %s save '%s' '%s' 2>&1", TIMEOUT, bin, src, dst))
      if c2 >= 124 then crashed = crashed + 1 end
      if c2 ~= 0 and o.weights and o.weights.missing_files then
        skipped, n = skipped + 1, n - 1 -- a spec shipped without its weights cannot be packaged
      elseif c2 == 1 and msg:find("compiled NeuralNetwork (model.espresso.*) cannot be saved", 1, true) then
        skipped, n = skipped + 1, n - 1 -- refused: its spec is a partial reconstruction
      elseif c2 ~= 0 then
        print(string.format("  ROUND TRIP  %s/%s: save failed: %s", folder, model, msg:gsub("\n$", "")))
      else
        local b = sh(string.format("timeout %d %s info --json '%s' 2>&1", TIMEOUT, bin, dst))
        local ok, ob = pcall(json.decode, b)
        if ok and json.encode(strip(o)) == json.encode(strip(ob)) then ok_n = ok_n + 1
        else print(string.format("  ROUND TRIP  %s/%s: info differs after save", folder, model)) end
      end
    end
  end
  print(string.format("round trip %s: %d/%d models save and reload identically%s", folder, ok_n, n,
    skipped > 0 and string.format(" (%d skipped: spec-only without a weight file, or a compiled NeuralNetwork whose spec is rebuilt from Espresso)", skipped) or ""))
end
sh("rm -rf '" .. rt_dir .. "'")
if crashed > 0 then
  print(string.format("conformance: mlsh crashed or hung on %d model(s)", crashed))
  os.exit(1)
end
