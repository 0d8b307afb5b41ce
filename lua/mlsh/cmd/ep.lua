-- mlsh ep MODEL.onnx — predict how ONNX Runtime's CoreML execution provider partitions a model.
-- Default: the full predictor (ONNX Runtime's level-1 graph optimizations first, then the EP's
-- per-op builder conditions, the generic rules, its grouping and its boundary-dtype filter).
-- --table-only: ONNX Runtime's usability checker (op table membership only, graph as stored).
-- Exit status: 0 ok, 1 unreadable model (or a file that cannot be written), 2 bad usage.
local mlsh = require "mlsh"
require "mlsh.onnx.model"
local json = mlsh.json

local C = {
  summary = "predict ONNX Runtime CoreML EP partitions for an ONNX model",
  usage = [[mlsh ep MODEL.onnx [options]
  --model-format mlprogram|neuralnetwork   ModelFormat (default neuralnetwork, as ONNX Runtime)
  --compute-units CPUOnly|CPUAndGPU|CPUAndNeuralEngine|ALL   MLComputeUnits (default ALL)
  --require-static-input-shapes 0|1        RequireStaticInputShapes (default 0)
  --enable-on-subgraphs 0|1                EnableOnSubgraphs (default 0)
  --ort-version V                          ONNX Runtime release whose EP rules apply (default: newest modelled, 1.20)
  -o KEY=VALUE                             any of the four as ONNX Runtime spells them
  --freeze NAME=VALUE[,NAME=VALUE…]        fix symbolic dims (dim_param names, or input:axis)
  --freeze-all N                           fix every symbolic or unknown input dim to N
  --table-only                             ONNX Runtime's usability checker instead (op table only)
  --ops-file FILE                          the op table (|domain:op|note| markdown rows or domain:op lines)
  --save OUT.onnx                          write the model with --freeze and --gelu-tanh applied
  --gelu-tanh                              with --save: rewrite Erf-GELU subgraphs to the tanh form
  --nodes                                  list every node with its support and reason (text mode)
  --json                                   one JSON object on stdout]],
}

local FORMATS = { mlprogram = "mlprogram", neuralnetwork = "neuralnetwork" }
local UNITS = { cpuonly = "CPUOnly", cpuandgpu = "CPUAndGPU", cpuandneuralengine = "CPUAndNeuralEngine", all = "ALL" }

local function usage_error(msg)
  io.stderr:write("mlsh ep: ", msg, "\nusage: ", C.usage, "\n")
  return 2
end

-- Parse "a=1,b=2" into {{name, value}} (values positive integers); nil, err on bad syntax.
function C.parse_freeze(spec)
  local out = {}
  for item in (spec .. ","):gmatch("([^,]*),") do
    local name, value = item:match("^%s*([^=]-)%s*=%s*(%d+)%s*$")
    local v = value and math.tointeger(tonumber(value))
    if not name or name == "" or not v or v < 1 then
      return nil, "bad --freeze item '" .. item .. "' (expected NAME=POSITIVE_INTEGER)"
    end
    out[#out + 1] = { name = name, value = v }
  end
  return out
end

-- Apply one ONNX Runtime provider option KEY=VALUE to opts; nil, err when invalid.
local function provider_option(opts, key, value)
  local k = key:lower()
  if k == "modelformat" then
    local f = FORMATS[value:lower()]
    if not f then return nil, "ModelFormat must be MLProgram or NeuralNetwork, not " .. value end
    opts.model_format = f
  elseif k == "mlcomputeunits" then
    local u = UNITS[value:lower()]
    if not u then return nil, "MLComputeUnits must be CPUOnly, CPUAndGPU, CPUAndNeuralEngine or ALL, not " .. value end
    opts.compute_units = u
  elseif k == "requirestaticinputshapes" or k == "enableonsubgraphs" then
    if value ~= "0" and value ~= "1" then return nil, key .. " must be 0 or 1, not " .. value end
    opts[k == "enableonsubgraphs" and "enable_on_subgraphs" or "require_static_input_shapes"] = value == "1"
  else
    return nil, "unknown provider option " .. key
  end
  return true
end

function C.parse(args)
  local o = { model_format = "neuralnetwork", compute_units = "ALL", require_static_input_shapes = false,
              enable_on_subgraphs = false }
  local i = 1
  local function value(flag)
    local v = args[i + 1]
    if v == nil then return nil, flag .. " needs a value" end
    i = i + 1
    return v
  end
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if flag then a = flag; table.insert(args, i + 1, inline) end
    local v, err
    if a == "--json" then o.json = true
    elseif a == "--table-only" then o.table_only = true
    elseif a == "--nodes" then o.list_nodes = true
    elseif a == "--gelu-tanh" then o.gelu_tanh = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a == "--model-format" then
      v, err = value(a); if not v then return nil, err end
      local ok, e = provider_option(o, "ModelFormat", v); if not ok then return nil, e end
    elseif a == "--compute-units" then
      v, err = value(a); if not v then return nil, err end
      local ok, e = provider_option(o, "MLComputeUnits", v); if not ok then return nil, e end
    elseif a == "--require-static-input-shapes" or a == "--enable-on-subgraphs" then
      v, err = value(a); if not v then return nil, err end
      local ok, e = provider_option(o, a == "--enable-on-subgraphs" and "EnableOnSubgraphs"
        or "RequireStaticInputShapes", v)
      if not ok then return nil, e end
    elseif a == "-o" or a == "--provider-option" then
      v, err = value(a); if not v then return nil, err end
      local key, val = v:match("^([^=]+)=(.*)$")
      if not key then return nil, "provider option must be KEY=VALUE, not " .. v end
      local ok, e = provider_option(o, key, val); if not ok then return nil, e end
    elseif a == "--ort-version" then
      v, err = value(a); if not v then return nil, err end
      local rules = require "mlsh.onnx.coreml_rules"
      local key, e = rules.normalize(v)
      if not key then return nil, e end
      o.ort_version = key
    elseif a == "--ops-file" then
      v, err = value(a); if not v then return nil, err end
      o.ops_file = v
    elseif a == "--save" then
      v, err = value(a); if not v then return nil, err end
      o.save = v
    elseif a == "--freeze" then
      v, err = value(a); if not v then return nil, err end
      local list, e = C.parse_freeze(v); if not list then return nil, e end
      o.freeze = o.freeze or {}
      for _, f in ipairs(list) do o.freeze[#o.freeze + 1] = f end
    elseif a == "--freeze-all" then
      v, err = value(a); if not v then return nil, err end
      local n = math.tointeger(tonumber(v))
      if not n or n < 1 then return nil, "--freeze-all needs a positive integer, not " .. v end
      o.freeze_all = n
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option " .. a
    else
      if o.path then return nil, "one model at a time (got " .. o.path .. " and " .. a .. ")" end
      o.path = a
    end
    i = i + 1
  end
  if o.help then return o end
  if not o.path then return nil, "no model given" end
  if o.ops_file and not o.table_only then return nil, "--ops-file goes with --table-only" end
  if o.ort_version and o.table_only then return nil, "--ort-version goes with the full predictor, not --table-only" end
  if o.gelu_tanh and not o.save then return nil, "--gelu-tanh goes with --save OUT.onnx" end
  return o
end

function C.text_report(r, o)
  local lines = {}
  local function add(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
  add("%s: %s, %s", o.path, r.mode == "table-only" and ("usability checker, " .. tostring(r.table))
    or ("CoreML EP prediction, ONNX Runtime " .. tostring(r.ort_version)), r.model_format)
  if r.nodes_raw ~= r.nodes then
    add("  nodes: %d as stored, %d after ONNX Runtime's basic optimizations", r.nodes_raw, r.nodes)
  else
    add("  nodes: %d", r.nodes)
  end
  if r.summary then add("  %s", r.summary) end
  add("  %d partitions, %d/%d nodes supported (%.1f%%)", #r.partitions, r.supported_nodes, r.nodes, r.pct_supported)
  local sizes = {}
  for i, s in ipairs(r.partition_sizes) do sizes[i] = tostring(s) end
  if #sizes > 0 then add("  partition sizes: [%s]", table.concat(sizes, ", ")) end
  for _, p in ipairs(r.partitions) do
    if p.first then add("    #%d: %d nodes, node %d..%d%s", p.id, p.size, p.first, p.last, p.graph ~= "main"
      and (" in " .. p.graph) or "")
    else add("    #%d: %d nodes in %s", p.id, p.size, p.graph) end
  end
  if #r.cut_makers > 0 then
    add("  cut-makers (partitions they cause):")
    for i, c in ipairs(r.cut_makers) do
      if i > 10 then add("    … %d more", #r.cut_makers - 10) break end
      add("    %-28s %3d partitions, %d nodes", c.op, c.partitions_caused, c.nodes)
    end
  end
  local by_reason = {}
  for _, u in ipairs(r.unsupported) do
    local k = u.op .. ": " .. (u.reason or "?")
    by_reason[k] = (by_reason[k] or 0) + 1
  end
  local keys = {}
  for k in pairs(by_reason) do keys[#keys + 1] = k end
  table.sort(keys, function(a,
    b) if by_reason[a] ~= by_reason[b] then return by_reason[a] > by_reason[b] end return a < b end)
  if #keys > 0 then add("  unsupported (%d nodes):", #r.unsupported) end
  for i, k in ipairs(keys) do
    if i > 15 then add("    … %d more reasons", #keys - 15) break end
    add("    %3d × %s", by_reason[k], k)
  end
  if o.list_nodes then
    for _, u in ipairs(r.unsupported) do add("    node %s %s (%s): %s", tostring(u.node), u.op, u.name or "", u.reason
      or "") end
  end
  if r.hops then add("  estimated hops between CoreML and the CPU per inference: %d", r.hops) end
  for _, cf in ipairs(r.counterfactuals or {}) do add("  what if: %s", cf.text) end
  if r.checker_error then add("  note: ONNX Runtime's checker itself would fail here: %s", r.checker_error) end
  add("  verdict: %s", r.verdict)
  return table.concat(lines, "\n")
end

function C.run(args)
  local copy = {}
  for i, a in ipairs(args) do copy[i] = a end
  local o, err = C.parse(copy)
  if not o then return usage_error(err) end
  if o.help then print("usage: " .. C.usage) return 0 end
  local tbl
  if o.ops_file then
    local ops_file = require "mlsh.onnx.ops_file"
    tbl, err = ops_file.load(o.ops_file)
    if not tbl then return usage_error(err) end
  end
  local m
  m, err = mlsh.try_load(o.path)
  if not m then io.stderr:write("mlsh: ", err, "\n") return 1 end
  if m.format ~= "onnx" then
    m:close()
    io.stderr:write("mlsh: ", o.path,
      ": not an ONNX model (mlsh ep predicts ONNX Runtime's CoreML EP for .onnx files)\n")
    return 1
  end
  local ok, res = pcall(function()
    local ep = require "mlsh.onnx.ep"
    return ep.run(m, o, tbl)
  end)
  m:close()
  if not ok then
    local msg = tostring(res)
    if msg:find("^usage: ") then return usage_error(msg:sub(8)) end
    if not msg:find(o.path, 1, true) then msg = o.path .. ": " .. msg end
    io.stderr:write("mlsh: ", msg, "\n")
    return 1
  end
  if o.json then
    print(json.encode(require("mlsh.onnx.ep").to_json(res), true))
  else
    print(C.text_report(res, o))
  end
  return 0
end

return C
