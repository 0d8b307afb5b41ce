-- mlsh.onnx.partition — how ONNX Runtime groups supported nodes into partitions
-- (onnxruntime/core/providers/partitioning_utils.cc CreateSupportedPartitionNodeGroups, which the
-- usability checker replicates in Python). A Kahn topological walk in waves: from the ready set,
-- supported nodes join the current group; unsupported nodes that consume nothing of the current
-- group are processed at once (their consumers may become ready in the same wave); unsupported
-- nodes on the group's border wait for the next wave, which starts a new group. Groups are
-- maximal and may hold parallel unconnected branches; single-node groups are kept.
--   links = P.links(graph)  -- producer/consumer sets between nodes of one graph tree, the way the
--                             checker builds them: edges inside each graph, plus edges from outer
--                             producers to a node whose subgraphs read their values (implicit inputs)
--   res = P.group(nodes, links, is_supported)
--     res.groups = {{node…}…} in creation order; res.order = nodes in processing order
--     (every node exactly once, unless a cycle leaves some never ready: res.unreached)
local M = {}

local function new_set() return { list = {}, has = {} } end
local function add(set, x)
  if not set.has[x] then
    set.has[x] = true
    set.list[#set.list + 1] = x
  end
end

-- Producer/consumer links for the graph tree rooted at g. `graphs_of(node)` gives the subgraphs
-- to descend into (default: every subgraph); the checker only follows single-graph attributes.
-- Returns links = {producers = {node -> set}, consumers = {node -> set}}, plus the names the
-- top graph reads without defining (an invalid model when not empty).
function M.links(g, graphs_of)
  graphs_of = graphs_of or function(node)
    local out = {}
    for i, sg in ipairs(node.subgraphs) do out[i] = sg.graph end
    return out
  end
  local producers_of, consumers_of = {}, {}
  local function link(p, c)
    local s = producers_of[c]
    if not s then s = new_set(); producers_of[c] = s end
    add(s, p)
    local t = consumers_of[p]
    if not t then t = new_set(); consumers_of[p] = t end
    add(t, c)
  end
  local function map(graph)
    local defined = {}
    for _, vi in ipairs(graph.inputs) do defined[vi.name] = true end
    for name in pairs(graph.initializers) do defined[name] = true end
    local producer = {}
    local implicit = new_set()
    for _, node in ipairs(graph.nodes) do
      local inputs = {}
      for i, name in ipairs(node.inputs) do inputs[i] = name end
      for _, sg in ipairs(graphs_of(node)) do
        for _, name in ipairs(map(sg).list) do inputs[#inputs + 1] = name end
      end
      for _, name in ipairs(inputs) do
        if name ~= "" then
          if producer[name] then link(producer[name], node)
          elseif not defined[name] then add(implicit, name) end
        end
      end
      for _, o in ipairs(node.outputs) do producer[o] = node end
    end
    return implicit
  end
  local missing = map(g)
  return { producers = producers_of, consumers = consumers_of }, missing.list
end

-- Links for a graph whose values are plain (no subgraph descent); used by the EP model on the
-- optimized graph, where edges from a subgraph owner's implicit inputs are added by the caller.
M.new_set, M.add = new_set, add

function M.group(nodes, links, is_supported)
  local in_degree = {}
  local ready, deferred = {}, {}
  local ri, di = 1, 1 -- queue heads
  for _, node in ipairs(nodes) do
    local p = links.producers[node]
    local n = p and #p.list or 0
    in_degree[node] = n
    if n == 0 then ready[#ready + 1] = node end
  end
  local groups, order = {}, {}
  local group, border = {}, {}
  local function close_group()
    if #group > 0 then groups[#groups + 1] = group end
    group, border = {}, {}
  end
  while ri <= #ready or di <= #deferred do
    if ri > #ready then
      close_group()
      ready, ri = {}, 1
      for k = di, #deferred do ready[#ready + 1] = deferred[k] end
      deferred, di = {}, 1
    else
      local node = ready[ri]
      ri = ri + 1
      local ok = is_supported(node)
      if not ok and border[node] then
        -- an unsupported node on the border waits for the next group
        deferred[#deferred + 1] = node
      else
        order[#order + 1] = node
        local cons = links.consumers[node]
        if ok then
          group[#group + 1] = node
          border[node] = nil
          if cons then for _, c in ipairs(cons.list) do border[c] = true end end
        end
        if cons then
          for _, c in ipairs(cons.list) do
            local d = in_degree[c] - 1
            in_degree[c] = d
            if d == 0 then ready[#ready + 1] = c end
          end
        end
      end
    end
  end
  close_group()
  local unreached = {}
  if #order < #nodes then
    local seen = {}
    for _, n in ipairs(order) do seen[n] = true end
    for _, n in ipairs(nodes) do if not seen[n] then unreached[#unreached + 1] = n end end
  end
  return { groups = groups, order = order, unreached = unreached }
end

-- ONNX Runtime's node indices for an optimized ir: stored nodes keep their position among the
-- non-Constant nodes (Graph's constructor turns Constant nodes into initializers first), nodes a
-- pass created follow in creation order.
function M.node_indices(ir)
  local index, stored, created = {}, {}, {}
  for _, n in ipairs(ir.nodes) do
    if n.index then stored[#stored + 1] = n else created[#created + 1] = n end
  end
  local pos, k = {}, 0
  for i, n in ipairs(ir.graph.nodes) do
    if not (n.op == "Constant" and (n.domain == "" or n.domain == "ai.onnx")) then pos[i - 1] = k; k = k + 1 end
  end
  for _, n in ipairs(stored) do index[n] = pos[n.index] or n.index end
  -- nodes an If inlining created carry their creation number; the rest follow in list order
  local at = {}
  for i, n in ipairs(created) do at[n] = i end
  table.sort(created, function(a, b)
    local ca, cb = a.created or math.huge, b.created or math.huge
    if ca ~= cb then return ca < cb end
    return at[a] < at[b]
  end)
  for i, n in ipairs(created) do index[n] = k + i end
  return index
end

-- GraphViewer's default topological order (graph_viewer.cc: Graph::ReverseDFSFrom the leaf nodes,
-- inputs visited in NodeCompare (index) order, a node emitted when left).
function M.ort_order(nodes, links, index)
  local stack, visited, order = {}, {}, {}
  for _, n in ipairs(nodes) do
    local c = links.consumers[n]
    if not c or #c.list == 0 then stack[#stack + 1] = { n, false } end
  end
  table.sort(stack, function(a, b) return index[a[1]] < index[b[1]] end)
  while #stack > 0 do
    local e = table.remove(stack)
    local n = e[1]
    if e[2] then order[#order + 1] = n
    elseif not visited[n] then
      visited[n] = true
      stack[#stack + 1] = { n, true }
      local p = links.producers[n]
      local ins = {}
      for k, x in ipairs(p and p.list or {}) do ins[k] = x end
      table.sort(ins, function(a, b) return index[a] < index[b] end)
      for _, x in ipairs(ins) do if not visited[x] then stack[#stack + 1] = { x, false } end end
    end
  end
  return order
end

-- ONNX Runtime's usability-checker verdict (tools/python/util/mobile_helpers/usability_checker.py
-- PartitioningInfo.suitability): one partition over 75% of the nodes -> YES, over 50% -> MAYBE;
-- two partitions over 75% -> MAYBE; anything else NO.
function M.suitability(partitions, supported, total)
  if total == 0 then return "NO", 0 end
  local pct = supported / total * 100
  if partitions == 1 then
    if pct > 75 then return "YES", pct elseif pct > 50 then return "MAYBE", pct end
    return "NO", pct
  elseif partitions == 2 and pct > 75 then
    return "MAYBE", pct
  end
  return "NO", pct
end

return M
