-- mlsh.graph — the model's graph as Graphviz DOT, each op coloured by the device the placement
-- simulator predicts (ANE green, GPU blue, CPU grey), each segment (a run on one device) boxed,
-- device switches drawn as bold red edges. Constants are left out: they are data, not work.
--
--   local graph = require "mlsh.graph"
--   local dot = graph.dot(m, { compute_units = "ALL", target = 8, fallbacks = {...} })
--   graph.write(m, "out.svg", opts)   -- .dot, or .svg through graphviz's `dot`; nil, message, exit code
local placement = require "mlsh.placement.coreml"

local M = {}

M.COLORS = {
  ANE = { fill = "#c8f0cf", line = "#1e8e3e" },
  GPU = { fill = "#cfe2ff", line = "#1a5fd0" },
  CPU = { fill = "#e4e4e7", line = "#6b6b73" },
}
M.EXTENSIONS = { dot = true, gv = true, svg = true }

local function q(s)
  return '"' .. tostring(s):gsub('\\', '\\\\'):gsub('"', '\\"'):gsub("\n", "\\n") .. '"'
end
M.quote = q

-- Tensor names an op / layer reads and writes.
local function io_names(o)
  local raw = o.node and o.node.raw
  local ins, outs = {}, {}
  if not raw then return ins, outs end
  if o.kind == "mil" then
    local ok, inputs = pcall(raw.inputs, raw)
    for _, e in ipairs(ok and inputs or {}) do
      if e.name then ins[#ins + 1] = e.name end
    end
    for _, x in ipairs(raw.outputs or {}) do outs[#outs + 1] = x.name end
  elseif o.kind == "nn" then
    for _, n in ipairs(raw.inputs or {}) do ins[#ins + 1] = n end
    for _, n in ipairs(raw.outputs or {}) do outs[#outs + 1] = n end
  end
  return ins, outs
end

-- Build the DOT text. opts: compute_units, target, fallbacks, device (as mlsh.placement.simulate),
-- title (graph label; default the model path).
-- The ops of a placement grouped by sequence (a function, or a (sub-)model): each keeps its own
-- namespace of tensor names.
local function sequences(p)
  local seqs, seq_of = {}, {}
  for _, o in ipairs(p.ops) do
    local key = o.seq
    if not seq_of[key] then
      seq_of[key] = { ops = {}, name = (o.model and (o.model .. "/") or "") .. (o["function"] or ""), id = #seqs + 1 }
      seqs[#seqs + 1] = seq_of[key]
    end
    table.insert(seq_of[key].ops, o)
  end
  return seqs
end

-- One sequence's ops as nodes, inside one cluster per placement segment.
local function write_nodes(w, p, sq, seg_of)
  local current_seg
  for _, o in ipairs(sq.ops) do
    local k = seg_of[o.index]
    if k ~= current_seg then
      if current_seg then w("    }") end
      local s = p.segments[k]
      local c = M.COLORS[s.device]
      w(string.format("    subgraph cluster_seg%d {", k))
      w(string.format('      label=%s; style="rounded"; color=%s; penwidth=1.5; fontcolor=%s;',
        q(string.format("%s segment %d (%d op%s)", s.device, k, s.count, s.count == 1 and "" or "s")), q(c.line), q(c.line)))
      current_seg = k
    end
    local c = M.COLORS[o.device]
    w(string.format('      n%d [label=%s, fillcolor=%s, color=%s, tooltip=%s];', o.index, q(o.type .. "\n" .. o.op),
      q(c.fill), q(c.line), q(o.device .. ": " .. (o.reason or ""))))
  end
  if current_seg then w("    }") end
end

-- One sequence's edges (into `edges`) and its model inputs and outputs as ellipses.
local function write_io(w, m, sq, prefix, producer, edges)
  -- model inputs and outputs as ellipses
  local inputs = {}
  for _, o in ipairs(sq.ops) do
    local ins = io_names(o)
    for _, n in ipairs(ins) do
      local src = producer[n]
      if src then
        edges[#edges + 1] = { from = "n" .. src.index, to = "n" .. o.index, a = src.device, b = o.device }
      else
        inputs[n] = true
      end
    end
  end
  local model_inputs, model_outputs = {}, {}
  local ok_in, feats = pcall(m.inputs, m)
  for _, f in ipairs(ok_in and feats or {}) do model_inputs[f.name] = true end
  local ok_out, ofeats = pcall(m.outputs, m)
  for _, f in ipairs(ok_out and ofeats or {}) do model_outputs[f.name] = true end
  for _, fn in ipairs(m:functions()) do
    if fn.name == sq.ops[1]["function"] then
      for _, i in ipairs(fn.inputs) do model_inputs[i.name] = true end
      for _, oname in ipairs(fn.outputs or {}) do model_outputs[oname] = true end
    end
  end
  local in_names = {}
  for n in pairs(inputs) do
    if model_inputs[n] then in_names[#in_names + 1] = n end
  end
  table.sort(in_names)
  for _, n in ipairs(in_names) do
    local id = prefix .. "in_" .. n:gsub("[^%w]", "_")
    w(string.format('    %s [label=%s, shape=ellipse, style=filled, fillcolor="#ffffff"];', id, q("input " .. n)))
    for _, o in ipairs(sq.ops) do
      for _, x in ipairs((io_names(o))) do
        if x == n then edges[#edges + 1] = { from = id, to = "n" .. o.index } end
      end
    end
  end
  local out_names = {}
  for n in pairs(model_outputs) do
    if producer[n] then out_names[#out_names + 1] = n end
  end
  table.sort(out_names)
  for _, n in ipairs(out_names) do
    local id = prefix .. "out_" .. n:gsub("[^%w]", "_")
    w(string.format('    %s [label=%s, shape=ellipse, style=filled, fillcolor="#ffffff"];', id, q("output " .. n)))
    edges[#edges + 1] = { from = "n" .. producer[n].index, to = id }
  end
end

-- The edges; device changes in red with the transition as label.
local function write_edges(w, edges)
  for _, e in ipairs(edges) do
    if e.a and e.b and e.a ~= e.b then
      w(string.format('  %s -> %s [color="#d93025", penwidth=2.0, label=%s, fontcolor="#d93025", fontsize=9];', e.from, e.to,
        q(e.a .. "→" .. e.b)))
    else
      w(string.format("  %s -> %s;", e.from, e.to))
    end
  end
end

local function write_legend(w)
  w("  subgraph cluster_legend {")
  w('    label="predicted device"; style="rounded"; color="#cccccc";')
  for _, d in ipairs({ "ANE", "GPU", "CPU" }) do
    w(string.format("    legend_%s [label=%s, fillcolor=%s, color=%s];", d, q(d), q(M.COLORS[d].fill), q(M.COLORS[d].line)))
  end
  w("    legend_ANE -> legend_GPU -> legend_CPU [style=invis];")
  w("  }")
end

function M.dot(m, opts)
  opts = opts or {}
  local p = placement.simulate(m, { compute_units = opts.compute_units, target = opts.target,
    fallbacks = opts.fallbacks, device = opts.device, calibrated = opts.calibrated })
  local out = {}
  local function w(s) out[#out + 1] = s end
  w("digraph mlsh {")
  w("  rankdir=TB;")
  w('  graph [fontname="Helvetica", fontsize=11, label=' .. q(string.format("%s — predicted placement (%s): ANE %.0f%% of ops, %.0f%% of work",
    opts.title or m.path or "model", p.compute_units, p.ane_coverage.ops * 100, p.ane_coverage.work * 100)) .. ', labelloc=t];')
  w('  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];')
  w('  edge [color="#888888", arrowsize=0.6, fontname="Helvetica"];')
  local seqs = sequences(p)
  local seg_of = {}
  for k, s in ipairs(p.segments) do
    for i = s.first_index, s.last_index do seg_of[i] = k end
  end
  local edges = {}
  for _, sq in ipairs(seqs) do
    local prefix = "s" .. sq.id .. "_"
    local wrap = #seqs > 1
    if wrap then
      w(string.format("  subgraph cluster_%s {", prefix .. "seq"))
      w("    label=" .. q(sq.name ~= "" and sq.name or ("part " .. sq.id)) .. '; style="dashed"; color="#999999";')
    end
    local producer = {}
    for _, o in ipairs(sq.ops) do
      local _, outs = io_names(o)
      for _, n in ipairs(outs) do producer[n] = o end
    end
    write_nodes(w, p, sq, seg_of)
    write_io(w, m, sq, prefix, producer, edges)
    if wrap then w("  }") end
  end
  write_edges(w, edges)
  write_legend(w)
  w("}")
  return table.concat(out, "\n") .. "\n", p
end

-- The path of graphviz's `dot` on PATH (MLSH_DOT overrides), or nil.
function M.find_dot()
  local override = os.getenv("MLSH_DOT")
  if override and override ~= "" then
    local f = io.open(override, "r")
    if f then f:close() return override end
    return nil
  end
  local p = io.popen("command -v dot 2>/dev/null")
  if not p then return nil end
  local path = p:read("l")
  p:close()
  if path and path ~= "" then return path end
  return nil
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Write the graph to `path` (.dot/.gv as DOT text, .svg through dot). Returns true, or nil, message
-- and the exit code the command should use (2: bad input or dot missing).
function M.write(m, path, opts)
  local ext = tostring(path):match("%.([%w]+)$")
  ext = ext and ext:lower()
  if not ext or not M.EXTENSIONS[ext] then
    return nil, string.format("%s: unknown output extension%s (use .dot or .svg)", path,
      ext and (" '." .. ext .. "'") or ""), 2
  end
  local fs = require("mlsh.core").fs
  local dot_text = M.dot(m, opts)
  if ext ~= "svg" then
    local ok, err = fs.write_atomic(path, dot_text)
    if not ok then return nil, tostring(err), 2 end
    return true
  end
  local dot = M.find_dot()
  if not dot then
    return nil, "graphviz's 'dot' is not installed, so no .svg can be made (install graphviz: apt-get install graphviz "
      .. "/ brew install graphviz), or write the DOT text with -o " .. path:gsub("%.[%w]+$", ".dot"), 2
  end
  local tmp = os.tmpname()
  local ok, err = fs.write_atomic(tmp, dot_text)
  if not ok then
    os.remove(tmp)
    return nil, tostring(err), 2
  end
  local errf = os.tmpname()
  local ran = os.execute(string.format("%s -Tsvg -o %s %s 2>%s", shell_quote(dot), shell_quote(path), shell_quote(tmp),
    shell_quote(errf)))
  local ef = io.open(errf, "r")
  local derr = ef and ef:read("a") or ""
  if ef then ef:close() end
  os.remove(tmp)
  os.remove(errf)
  if not ran then return nil, "dot failed: " .. (derr ~= "" and derr:gsub("%s+$", "") or "no message"), 2 end
  return true
end

return M
