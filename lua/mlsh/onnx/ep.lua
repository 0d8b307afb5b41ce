-- mlsh.onnx.ep — the entry point of `mlsh ep` (and recipes): runs the table-only usability
-- checker or the full CoreML EP predictor on a loaded ONNX model, with counterfactuals.
--   ep.run(model, opts [, table]) -> result      ep.to_json(result) -> the --json object
-- opts: model_format ("mlprogram"|"neuralnetwork"), compute_units, require_static_input_shapes,
-- enable_on_subgraphs, table_only, freeze = {{name, value}}, freeze_all = n, save = path,
-- gelu_tanh = bool, ort_version = "1.20" (the modelled ONNX Runtime release; default the newest).
-- Result keys (the --json contract): model_format, nodes_raw, nodes, supported_nodes,
-- partitions [{id, graph, size, nodes, first, last}], partition_sizes,
-- unsupported [{node, op, name, reason, rule}], cut_makers [{op, partitions_caused}], verdict; plus mode,
-- summary (the EP's own log line), ort_version, partitions[].node_names, pct_supported, hops, counterfactuals, options.
local json = require "mlsh.json"
local ops_file = require "mlsh.onnx.ops_file"
local table_check = require "mlsh.onnx.table_check"

local M = {}

function M.run(m, o, tbl)
  o = o or {}
  o.model_format = o.model_format or "neuralnetwork"
  local g = m.graph
  local res
  if o.table_only then
    -- the checker's op-only pass ignores shapes, so frozen dims change nothing there
    res = table_check.analyse(g, tbl or ops_file.builtin(o.model_format), o)
  else
    res = require("mlsh.onnx.predict").analyse(m, g, o)
  end
  if o.save then
    local surgery = require "mlsh.onnx.surgery"
    local written, err = surgery.save(m, o.save, { freeze = o.freeze, freeze_all = o.freeze_all,
      gelu_tanh = o.gelu_tanh })
    if not written then error(err, 0) end
    res.saved = written
  end
  return res
end

local function list(t) return json.array(t or {}) end

function M.to_json(r)
  local o = {
    mode = r.mode, model_format = r.model_format, table = r.table or json.null, ort_version = r.ort_version,
    nodes_raw = r.nodes_raw, nodes = r.nodes, supported_nodes = r.supported_nodes,
    pct_supported = math.floor(r.pct_supported * 1000 + 0.5) / 1000,
    partition_sizes = list(r.partition_sizes), verdict = r.verdict,
    subgraphs = r.subgraphs, nodes_in_subgraphs = r.nodes_in_subgraphs,
    summary = r.summary or json.null, hops = r.hops or json.null,
    unsupported_ops = list(r.unsupported_ops), checker_error = r.checker_error,
    options = r.options, passes = r.passes, saved = r.saved, frozen = r.frozen and json.object(r.frozen) or nil,
  }
  o.partitions = list({})
  for i, p in ipairs(r.partitions) do
    o.partitions[i] = { id = p.id, graph = p.graph, size = p.size, nodes = list(p.nodes), first = p.first or json.null,
                        last = p.last or json.null, ops = p.ops and json.object(p.ops) or nil,
                        node_names = p.node_names and list(p.node_names) or nil }
  end
  o.unsupported = list({})
  for i, u in ipairs(r.unsupported) do
    o.unsupported[i] = { node = u.node, op = u.op, name = u.name, reason = u.reason or json.null, rule = u.rule }
  end
  o.cut_makers = list({})
  for i, c in ipairs(r.cut_makers) do o.cut_makers[i] = c end
  if r.counterfactuals then
    o.counterfactuals = list({})
    for i, cf in ipairs(r.counterfactuals) do o.counterfactuals[i] = cf.json or { text = cf.text } end
  end
  return o
end

return M
