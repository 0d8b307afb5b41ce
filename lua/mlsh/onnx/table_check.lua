-- mlsh.onnx.table_check — `mlsh ep --table-only`: ONNX Runtime's own usability checker for the
-- CoreML EP (tools/python/util/mobile_helpers/usability_checker.py, check_partitioning with
-- require_fixed_input_sizes=False), so mlsh's numbers can stand beside that tool's:
--   * a node is supported iff "domain:op" (domain "ai.onnx" for the default one) is in the table,
--     and, for Transpose, its first attribute holds at most 5 ints (the checker's rank rule);
--   * no optimization pass runs: the graph is counted as stored, Constant nodes included;
--   * the main graph and every subgraph held in a single-graph attribute (If/Loop/Scan bodies) are
--     grouped separately and added up: partitions, supported nodes and node counts include them;
--   * the verdict follows the checker's thresholds (partition.suitability).
-- Where the real tool raises (a Transpose without attributes: IndexError; a node reading a value
-- nothing defines: ValueError) mlsh carries on and says so in `checker_error`.
local partition = require "mlsh.onnx.partition"
local ops_file = require "mlsh.onnx.ops_file"

local M = {}
local MAX_RANK = 5

-- Subgraphs the checker descends into: attributes holding one graph (attr.HasField("g")).
local function graph_attrs(node)
  local out = {}
  for _, name in ipairs(node.attr_order) do
    local a = node.attrs[name]
    if a.type == "GRAPH" then out[#out + 1] = a.value end
  end
  return out
end

local function transpose_rank_ok(node)
  if node.op ~= "Transpose" then return true end
  local first = node.attr_order[1]
  if not first then return true, "IndexError: list index (0) out of range (Transpose without attributes)" end
  local a = node.attrs[first]
  local n = (a.type == "INTS" and #a.value) or 0
  return n <= MAX_RANK
end

-- Analyse graph g (and its subgraphs) against table {ops = {...}}; `extra` is a set of keys
-- treated as supported too (for counterfactuals).
local function run(g, tbl, extra)
  local links, missing = partition.links(g, graph_attrs)
  local res = { groups = {}, unsupported = {}, nodes = 0, supported = 0, nodes_in_subgraphs = 0, subgraphs = 0,
                unsupported_ops = {}, reasons = {}, checker_errors = {} }
  if #missing > 0 then
    res.checker_errors[#res.checker_errors + 1] = "ValueError: invalid model with missing inputs of "
      .. table.concat(missing, ",")
  end
  local function check(graph, id_prefix, is_sub)
    local ids = {}
    for i, node in ipairs(graph.nodes) do ids[node] = id_prefix and (id_prefix .. (i - 1)) or (i - 1) end
    local function supported(node)
      local key = ops_file.key(node)
      local in_table = tbl.ops[key] ~= nil or (extra and extra[key])
      local rank_ok, err = transpose_rank_ok(node)
      if err then res.checker_errors[#res.checker_errors + 1] = err end
      return in_table and rank_ok, in_table, rank_ok
    end
    local r = partition.group(graph.nodes, links, function(node) return (supported(node)) end)
    for _, node in ipairs(r.order) do
      local ok, in_table, rank_ok = supported(node)
      if ok then
        res.supported = res.supported + 1
      else
        local key = ops_file.key(node)
        local reason
        if not in_table then
          reason = "not in the op table (" .. key .. ")"
          res.unsupported_ops[key] = (res.unsupported_ops[key] or 0) + 1
        end
        if not rank_ok then reason = (reason and (reason .. "; ") or "")
          .. "Transpose perm has more than 5 entries (rank > 5)" end
        res.unsupported[#res.unsupported + 1] = { node = ids[node], op = key, name = node.name, reason = reason }
      end
    end
    for _, grp in ipairs(r.groups) do
      local members = {}
      for i, node in ipairs(grp) do members[i] = ids[node] end
      res.groups[#res.groups + 1] = { nodes = members, size = #grp, graph = id_prefix and id_prefix:sub(1, -2)
        or "main",
                                      list = grp }
    end
    res.nodes = res.nodes + #graph.nodes
    if is_sub then
      res.subgraphs = res.subgraphs + 1
      res.nodes_in_subgraphs = res.nodes_in_subgraphs + #graph.nodes
    end
    for i, node in ipairs(graph.nodes) do
      for _, name in ipairs(node.attr_order) do
        local a = node.attrs[name]
        if a.type == "GRAPH" then
          check(a.value, (id_prefix or "") .. (i - 1) .. "/" .. name .. "/", true)
        end
      end
    end
  end
  check(g, nil, false)
  return res
end

-- The analysis as the `mlsh ep --json` object (see cmd/ep.lua for the keys).
function M.analyse(g, tbl, opts)
  opts = opts or {}
  local res = run(g, tbl)
  local out = {
    mode = "table-only", table = tbl.name, model_format = opts.model_format,
    nodes_raw = res.nodes, nodes = res.nodes, supported_nodes = res.supported,
    subgraphs = res.subgraphs, nodes_in_subgraphs = res.nodes_in_subgraphs,
    partitions = {}, partition_sizes = {}, unsupported = res.unsupported,
  }
  for i, grp in ipairs(res.groups) do
    local first, last
    for _, id in ipairs(grp.nodes) do
      if math.type(id) == "integer" then
        first = first and math.min(first, id) or id
        last = last and math.max(last, id) or id
      end
    end
    local ops = {}
    for _, node in ipairs(grp.list) do
      local k = ops_file.key(node)
      ops[k] = (ops[k] or 0) + 1
    end
    out.partitions[i] = { id = i, graph = grp.graph, size = grp.size, nodes = grp.nodes, first = first, last = last,
      ops = ops }
    out.partition_sizes[i] = grp.size
  end
  local keys = {}
  for k in pairs(res.unsupported_ops) do keys[#keys + 1] = k end
  table.sort(keys)
  out.unsupported_ops = keys
  out.verdict, out.pct_supported = partition.suitability(#res.groups, res.supported, res.nodes)
  if #res.checker_errors > 0 then out.checker_error = res.checker_errors[1] end
  -- cut-makers: how many partitions go away if an op were in the table
  local cuts = {}
  for _, k in ipairs(keys) do
    local alt = run(g, tbl, { [k] = true })
    -- supporting an op can also add partitions (a lone Constant becomes one): that is no cut
    cuts[#cuts + 1] = { op = k, nodes = res.unsupported_ops[k], partitions_caused = math.max(0,
      #res.groups - #alt.groups),
                        partitions_if_supported = #alt.groups, supported_nodes_if_supported = alt.supported }
  end
  table.sort(cuts, function(a, b)
    if a.partitions_caused ~= b.partitions_caused then return a.partitions_caused > b.partitions_caused end
    if a.nodes ~= b.nodes then return a.nodes > b.nodes end
    return a.op < b.op
  end)
  out.cut_makers = cuts
  return out
end

return M
