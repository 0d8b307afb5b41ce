-- mlsh.info — `mlsh info`: the model summary as one JSON-ready table and as text.
-- Fixed keys (a contract): format spec_version model_type is_updatable inputs outputs states
-- metadata functions default_function op_histogram layers layer_histogram pipeline weights.
local json = require "mlsh.json"

local M = {}
local null, array, object = json.null, json.array, json.object

local function feature_json(f)
  local o = { name = f.name, kind = f.kind, optional = f.optional or false, dtype = f.dtype or null,
              shape = f.shape and array(f.shape) or null, flexibility = null }
  if f.flexibility then
    local fl = f.flexibility
    if fl.kind == "enumerated" then
      local shapes = {}
      for i, s in ipairs(fl.shapes) do shapes[i] = array(s) end
      o.flexibility = { kind = "enumerated", shapes = array(shapes) }
    else
      o.flexibility = { kind = "range", ranges = array(fl.ranges) }
    end
  end
  if f.kind == "image" then o.width, o.height, o.color_space = f.width, f.height, f.color_space end
  if f.kind ~= "multiArray" and f.kind ~= "state" and f.kind ~= "image" then o.shape = null end
  if f.key_kind then o.key_kind = f.key_kind end
  return o
end

local function features(list)
  local out = array({})
  for i, f in ipairs(list) do out[i] = feature_json(f) end
  return out
end

local function weights_json(m, is_root)
  local files = array({})
  if is_root then
    for _, f in ipairs(m:_files() or {}) do
      if f.path:match("^weights/") or f.path:match("%.bin$") and f.path:match("weight") then
        files[#files + 1] = { path = f.path, bytes = f.bytes }
      end
    end
    table.sort(files, function(a, b) return a.path < b.path end)
  end
  local count, bytes, missing = 0, 0, {}
  local present = {}
  for _, f in ipairs(files) do present[f.path] = true end
  for _, w in ipairs(m:weights()) do
    count = count + 1
    local rel = w.file and w.file:gsub("^@model_path/", "")
    if w.storage == "blob" and is_root and not present[rel] then
      -- a spec shipped without its weight file (seen in the wild): report it, do not fail
      if not missing[rel] then missing[#missing + 1] = rel; missing[rel] = true end
      bytes = bytes + (w.bytes or 0)
    elseif w.storage == "blob" then
      -- reads only the 64-byte metadata record: proves the reference is sound without touching data
      local meta, err = w:blob()
      if not meta then error(err, 0) end
      bytes = bytes + meta.size
    else
      bytes = bytes + (w.bytes or 0)
    end
  end
  local o = { files = files, count = count, bytes = bytes }
  -- compressed weights, from the ops alone (no weight data is read)
  local okc, cz = pcall(require("mlsh.model.weights").compression_summary, m)
  if okc and cz then o.compressed = { count = cz.count, kinds = cz.kinds, min_spec = cz.min_spec, forms = array(cz.forms) } end
  if #missing > 0 then
    local list = array({})
    for i, p in ipairs(missing) do list[i] = p end
    o.missing_files = list
  end
  return o
end

-- ML program: functions, their ops and histograms (into o).
local function program_info(m, o, d)
  local fns = m:functions()
  if #fns > 0 or m.program then
    o.functions = array({})
    local multi = d and #d.functions > 0
    for i, fn in ipairs(fns) do
      local ops = array({})
      for j, op in ipairs(fn.ops) do ops[j] = { type = op.type, name = op.name } end
      local hist = object({})
      for _, op in ipairs(fn.all_ops) do hist[op.type] = (hist[op.type] or 0) + 1 end
      o.functions[i] = {
        name = fn.name, opset = fn.opset,
        inputs = features(multi and m:inputs(fn.name) or m:inputs()),
        outputs = features(multi and m:outputs(fn.name) or m:outputs()),
        states = features(multi and m:states(fn.name) or m:states()),
        ops = ops, op_count = #fn.all_ops, op_histogram = hist,
        block_specializations = array(fn.block_keys),
      }
    end
    o.default_function = m.default_function or null
    o.op_histogram = object(m:op_histogram())
    o.program_version = m.program and m.program.version or null
  end
end

-- NeuralNetwork: layers, histogram, preprocessing, class labels (into o).
local function nn_info(m, o)
  local nn = m.neural_network
  if nn then
    o.layers = array({})
    for i, l in ipairs(m:layers()) do o.layers[i] = { name = l.name, type = l.type } end
    o.layer_histogram = object(m:layer_histogram())
    o.preprocessing_count = #nn.preprocessing
    local labels = nn.stringClassLabels or nn.int64ClassLabels
    if labels then o.class_labels = #labels.vector end
  end
end

-- Tree ensembles and GLMs: enough to count them (into o).
local function other_info(m, o)
  local t = m.model_type
  if t == "treeEnsembleRegressor" or t == "treeEnsembleClassifier" then
    local te = m.spec[t].treeEnsemble
    if te then
      local trees = {}
      local ntrees = 0
      for _, n in ipairs(te.nodes) do
        if not trees[n.treeId] then trees[n.treeId] = true; ntrees = ntrees + 1 end
      end
      o.trees = { nodes = #te.nodes, trees = ntrees, prediction_dimensions = te.numPredictionDimensions }
    end
  elseif t == "glmRegressor" or t == "glmClassifier" then
    local g = m.spec[t]
    o.glm = { weight_rows = #g.weights, offsets = #g.offset }
  end
end

function M.build(m, is_sub)
  local o = {
    format = is_sub and "submodel" or m.format,
    path = m.path,
    spec_version = m.spec_version or null,
    model_type = m.model_type or null,
    is_updatable = m.is_updatable or false,
    inputs = features(m:inputs()),
    outputs = features(m:outputs()),
    states = features(m:states()),
    metadata = null,
  }
  local md = m.metadata
  o.metadata = { author = md.author, license = md.license, short_description = md.short_description,
                 version = md.version, user_defined = object(md.user_defined) }
  local d = m.spec.description
  if d then
    o.predicted_feature_name = d.predictedFeatureName ~= "" and d.predictedFeatureName or null
    o.predicted_probabilities_name = d.predictedProbabilitiesName ~= "" and d.predictedProbabilitiesName or null
  end
  program_info(m, o, d)
  nn_info(m, o)
  -- pipelines
  local subs, names = m:submodels()
  if #subs > 0 then
    o.pipeline = array({})
    for i, sub in ipairs(subs) do
      local so = M.build(sub, true)
      so.pipeline_name = names and names[i] or null
      o.pipeline[i] = so
    end
  end
  other_info(m, o)
  o.weights = weights_json(m, not is_sub)
  return o
end

local function shape_str(f)
  if f.kind == "image" then return string.format("image %s %dx%d", f.color_space or "?", f.width or 0, f.height or 0) end
  if not f.shape then return f.kind end
  local dims = {}
  for i, d in ipairs(f.shape) do dims[i] = tostring(d) end
  local s = string.format("%s %s[%s]", f.kind, f.dtype or "?", table.concat(dims, "x"))
  if f.flexibility then
    if f.flexibility.kind == "enumerated" then s = s .. string.format(" (%d enumerated shapes)", #f.flexibility.shapes)
    else
      local r = {}
      for i, x in ipairs(f.flexibility.ranges) do r[i] = x[1] .. ".." .. (x[2] < 0 and "inf" or x[2]) end
      s = s .. " (range " .. table.concat(r, ", ") .. ")"
    end
  end
  return s
end

-- "conv 3, relu 3, add 1": a histogram most frequent first.
local function hist_str(h)
  local keys = {}
  for k in pairs(h) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) if h[a] ~= h[b] then return h[a] > h[b] end return a < b end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. " " .. h[k] end
  return table.concat(parts, ", ")
end

local function human_bytes(n)
  if n >= 1 << 30 then return string.format("%.2f GiB", n / (1 << 30)) end
  if n >= 1 << 20 then return string.format("%.2f MiB", n / (1 << 20)) end
  if n >= 1 << 10 then return string.format("%.1f KiB", n / (1 << 10)) end
  return n .. " B"
end
M.human_bytes = human_bytes
M.hist_str = hist_str

function M.text(m, indent)
  indent = indent or ""
  local o = M.build(m, indent ~= "")
  local lines = {}
  local function add(fmt, ...) lines[#lines + 1] = indent .. string.format(fmt, ...) end
  if indent == "" then add("%s (%s)", m.path, o.format) end
  add("  spec version %s, %s%s", tostring(m.spec_version), tostring(o.model_type), o.is_updatable and ", updatable" or "")
  for _, kind in ipairs({ "inputs", "outputs", "states" }) do
    for _, f in ipairs(kind == "inputs" and m:inputs() or kind == "outputs" and m:outputs() or m:states()) do
      add("  %-7s %s: %s%s", kind:sub(1, -2), f.name, shape_str(f), f.optional and " (optional)" or "")
    end
  end
  if o.functions then
    for _, fn in ipairs(o.functions) do
      add("  function %s%s <%s>: %d ops (%s)", fn.name, fn.name == o.default_function and #o.functions > 1 and " (default)" or "",
        fn.opset, fn.op_count, hist_str(fn.op_histogram))
      if #o.inputs == 0 and #o.outputs == 0 then -- multi-function: each function has its own I/O
        for _, kind in ipairs({ "inputs", "outputs", "states" }) do
          local list = kind == "inputs" and m:inputs(fn.name) or kind == "outputs" and m:outputs(fn.name) or m:states(fn.name)
          for _, f in ipairs(list) do add("    %-7s %s: %s", kind:sub(1, -2), f.name, shape_str(f)) end
        end
      end
    end
  end
  if o.layers then add("  %d layers (%s)", #o.layers, hist_str(o.layer_histogram)) end
  if o.trees then add("  tree ensemble: %d trees, %d nodes", o.trees.trees, o.trees.nodes) end
  if o.pipeline then
    add("  pipeline of %d models:", #o.pipeline)
    for i, sub in ipairs((m:submodels())) do
      add("  [%d] %s", i, tostring(sub.model_type))
      lines[#lines + 1] = M.text(sub, indent .. "    ")
    end
  end
  for _, p in ipairs(o.weights.missing_files or {}) do
    add("  warning: weight file %s is missing (spec without its weights: it will not load on a device)", p)
  end
  if o.weights.count > 0 or #o.weights.files > 0 then
    local files = {}
    for i, f in ipairs(o.weights.files) do files[i] = f.path .. " " .. human_bytes(f.bytes) end
    add("  weights: %d tensors, %s%s", o.weights.count, human_bytes(o.weights.bytes),
      #files > 0 and (" in " .. table.concat(files, ", ")) or "")
    local cz = o.weights.compressed
    if cz then
      local kinds = {}
      for k, n in pairs(cz.kinds) do kinds[#kinds + 1] = n .. " " .. k end
      table.sort(kinds)
      add("  compression: %d weights (%s), %s form, needs spec %d (see mlsh weights)", cz.count, table.concat(kinds, ", "),
        table.concat(cz.forms, " + "), cz.min_spec)
    end
  end
  local md = o.metadata
  if md.author ~= "" or md.short_description ~= "" or md.version ~= "" then
    add("  metadata: %s", table.concat({ md.short_description, md.author, md.version, md.license }, " | "))
  end
  local src = md.user_defined["com.github.apple.coremltools.source"]
  local ver = md.user_defined["com.github.apple.coremltools.version"]
  if src or ver then add("  made by coremltools %s from %s", ver or "?", src or "?") end
  local esp = indent == "" and m.format == "mlmodelc" and m:_cache().espresso -- mlsh.espresso
  if esp then add("  not recovered from the compiled model: %s", table.concat(esp.lost, "; ")) end
  return table.concat(lines, "\n")
end

return M
