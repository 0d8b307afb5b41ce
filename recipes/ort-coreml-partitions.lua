-- ONNX Runtime CoreML EP partitions, side by side: for each model format, mlsh's full predictor
-- (level-1 optimizations, builder conditions, grouping) next to ONNX Runtime's own usability
-- checker (op table only), then the what-ifs (frozen dims, tanh GELU, fp32) and the cut-makers
-- worth fixing first.
--   mlsh recipes/ort-coreml-partitions.lua MODEL.onnx [--ops-file-mlprogram T] [--ops-file-neuralnetwork T]
--                                                     [--freeze NAME=V,…] [--freeze-all N] [--json]
-- Exit status: 0, 1 when the model cannot be read, 2 on bad usage.
local mlsh = require "mlsh"
require "mlsh.onnx.model"
local ep = require "mlsh.onnx.ep"
local ops_file = require "mlsh.onnx.ops_file"
local cmd = require "mlsh.cmd.ep"
local json = mlsh.json

local USAGE = "usage: mlsh recipes/ort-coreml-partitions.lua MODEL.onnx [--ops-file-mlprogram T] "
  .. "[--ops-file-neuralnetwork T] [--freeze NAME=V,...] [--freeze-all N] [--json]"

local function die(msg, code)
  io.stderr:write("ort-coreml-partitions: ", msg, "\n", code == 2 and (USAGE .. "\n") or "")
  return code
end

local function main(args)
  local o = { tables = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--json" then o.json = true
    elseif a == "--ops-file-mlprogram" or a == "--ops-file-neuralnetwork" or a == "--freeze" or a == "--freeze-all" then
      local v = args[i + 1]
      if not v then return die(a .. " needs a value", 2) end
      i = i + 1
      if a == "--freeze" then
        local list, err = cmd.parse_freeze(v)
        if not list then return die(err, 2) end
        o.freeze = list
      elseif a == "--freeze-all" then
        o.freeze_all = math.tointeger(tonumber(v))
        if not o.freeze_all or o.freeze_all < 1 then return die("--freeze-all needs a positive integer", 2) end
      else
        local t, err = ops_file.load(v)
        if not t then return die(err, 2) end
        o.tables[a:match("ops%-file%-(%w+)")] = t
      end
    elseif a:sub(1, 1) == "-" then return die("unknown option " .. a, 2)
    else
      if o.path then return die("one model at a time", 2) end
      o.path = a
    end
    i = i + 1
  end
  if not o.path then return die("no model given", 2) end
  local m, err = mlsh.try_load(o.path)
  if not m then return die(err, 1) end
  if m.format ~= "onnx" then m:close() return die(o.path .. ": not an ONNX model", 1) end
  local report = { model = o.path, formats = {} }
  local ok, e = pcall(function()
    for _, fmt in ipairs({ "mlprogram", "neuralnetwork" }) do
      local full = ep.run(m, { model_format = fmt, freeze = o.freeze, freeze_all = o.freeze_all })
      local checker = ep.run(m, { model_format = fmt, table_only = true }, o.tables[fmt])
      report.formats[#report.formats + 1] = { model_format = fmt, predictor = ep.to_json(full), checker = ep.to_json(checker) }
    end
  end)
  m:close()
  if not ok then
    local msg = tostring(e)
    if msg:find("^usage: ") then return die(msg:sub(8), 2) end
    return die(msg, 1)
  end
  if o.json then
    print(json.encode(report, true))
    return 0
  end
  print(o.path)
  for _, f in ipairs(report.formats) do
    local p, c = f.predictor, f.checker
    print(string.format("\n%s", f.model_format == "mlprogram" and "MLProgram" or "NeuralNetwork"))
    print(string.format("  %-26s %4d nodes  %3d partitions  %4d supported  %s", "mlsh predictor", p.nodes,
      #p.partitions, p.supported_nodes, p.verdict))
    print(string.format("  %-26s %4d nodes  %3d partitions  %4d supported  %s", "ORT usability checker", c.nodes,
      #c.partitions, c.supported_nodes, c.verdict))
    print("  " .. p.summary)
    if p.hops ~= json.null then print(string.format("  estimated CoreML <-> CPU hops per inference: %d", p.hops)) end
    for k, cut in ipairs(p.cut_makers) do
      if k > 5 or cut.partitions_caused == 0 then break end
      print(string.format("  fix first: %-20s (%d nodes) -> %d fewer partitions", cut.op, cut.nodes, cut.partitions_caused))
    end
    for _, cf in ipairs(p.counterfactuals or {}) do
      print(string.format("  what if %-9s -> %d partitions, %d/%d nodes, %s", cf.kind, cf.partitions, cf.supported_nodes,
        cf.nodes, cf.verdict))
    end
  end
  return 0
end

return main(arg or {})
