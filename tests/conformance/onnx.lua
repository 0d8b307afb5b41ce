-- make conformance (ONNX part): every model in ../shared/corpus/onnx through `mlsh info --json`,
-- compared with the ground truth in its .facts.json (onnx python API; see the corpus FACTS.md),
-- and `mlsh ep --table-only --ops-file T --json` with each ONNX Runtime table in
-- ../shared/reference/ort-tables/, compared with the `op_only` entries of its .ortcheck.json
-- (ONNX Runtime's own usability checker; ORTCHECK.md). Prints each disagreement and the
-- agreement per folder. Exit status: 0 unless mlsh crashed or hung on some model (disagreements
-- are reported, not fatal, as CI wants).
--   lua5.4 tests/conformance/onnx.lua [CORPUS]      (CORPUS defaults to ../shared/corpus)
-- Env: MLSH_BIN, MLSH_CONFORMANCE_TIMEOUT (seconds per model), MLSH_CONFORMANCE_JOBS (parallel
-- runs; default: the number of CPUs), VERBOSE=1 (one line per agreeing model too),
-- MLSH_REFERENCE (the ort-tables folder's parent; default CORPUS/../reference),
-- MLSH_CONFORMANCE_PARTS ("info,ortcheck,ortep" by default: which comparisons to run; "ortep"
-- runs tests/conformance/ortep.lua: mlsh ep against ONNX Runtime 1.20's recorded GetCapability).
local json = require "mlsh.json"

local corpus = arg[1] or "../shared/corpus"
local bin = os.getenv("MLSH_BIN") or "./mlsh"
local TIMEOUT = tonumber(os.getenv("MLSH_CONFORMANCE_TIMEOUT") or "120")
local reference = os.getenv("MLSH_REFERENCE") or (corpus .. "/../reference")
local verbose = os.getenv("VERBOSE")
local parts = os.getenv("MLSH_CONFORMANCE_PARTS") or "info,ortcheck,ortep"

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function exists(p) return select(2, sh("test -e " .. q(p))) == 0 end

local root = corpus .. "/onnx"
if not exists(root) then
  print("conformance onnx: " .. root .. " is absent; nothing to check (this is not a failure)")
  os.exit(0)
end
local JOBS = tonumber(os.getenv("MLSH_CONFORMANCE_JOBS") or (sh("nproc 2>/dev/null"):match("%d+"))) or 2

local function readjson(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local ok, v = pcall(json.decode, s)
  return ok and v or nil
end

-- Run many shell commands, `jobs` at a time; returns {out, code} per command, in order.
-- (io.popen does not wait for its child until read, so opening several runs them in parallel.)
local function run_all(cmds, jobs)
  local results = {}
  local i = 1
  while i <= #cmds do
    local handles = {}
    for j = i, math.min(#cmds, i + jobs - 1) do handles[#handles + 1] = { j, io.popen(cmds[j]
      .. " 2>&1; echo \"#rc=$?\"") } end
    for _, h in ipairs(handles) do
      local out = h[2]:read("a")
      h[2]:close()
      local code = tonumber(out:match("#rc=(%d+)%s*$")) or 255
      results[h[1]] = { out = out:gsub("#rc=%d+%s*$", ""), code = code }
    end
    i = i + jobs
  end
  return results
end

-- ---- comparison helpers -------------------------------------------------------------------------
local Check = {}
Check.__index = Check
local function new_check(name) return setmetatable({ name = name, diffs = {}, n = 0 }, Check) end
local function show(v) return type(v) == "table" and json.encode(v) or tostring(v) end
local function same(a, b)
  if (a == nil or a == json.null) and (b == nil or b == json.null) then return true end
  if type(a) ~= type(b) then return false end
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

local SHORT = { FLOAT = "fp32", FLOAT16 = "fp16", BFLOAT16 = "bf16", DOUBLE = "fp64", INT8 = "int8", INT16 = "int16",
  INT32 = "int32", INT64 = "int64", UINT8 = "uint8", UINT16 = "uint16", UINT32 = "uint32", UINT64 = "uint64",
  BOOL = "bool", STRING = "string" }
local function dtype_of(name)
  if name == nil or name == json.null then return nil end
  return SHORT[name] or name:lower()
end

-- facts' type description -> the shape mlsh prints
local function facts_type(f)
  if f == nil or f == json.null then return nil end
  if f.kind == "tensor" or f.kind == "sparse_tensor" then
    return { kind = f.kind, dtype = dtype_of(f.elem_type_name), shape = f.shape }
  end
  return { kind = f.kind, elem = facts_type(f.elem) }
end
local function mlsh_type(o)
  if o == nil or o == json.null then return nil end
  if o.kind == "tensor" or o.kind == "sparse_tensor" then return { kind = o.kind, dtype = o.dtype, shape = o.shape } end
  return { kind = o.kind, elem = mlsh_type(o.elem) }
end

local function features(c, what, want, got)
  c:eq(what .. " count", #want, #got)
  for i, w in ipairs(want) do
    local g = got[i] or {}
    c:eq(string.format("%s[%d] %s", what, i, tostring(w.name)), { name = w.name, type = facts_type(w) },
      { name = g.name, type = mlsh_type(g) })
  end
end

local function compare_info(c, f, o)
  c:eq("ir_version", f.ir_version, o.ir_version)
  local opsets = {}
  for _, e in ipairs(f.opset_imports or {}) do opsets[e.domain == "ai.onnx" and "" or e.domain] = e.version end
  c:eq("opsets", opsets, o.opsets)
  c:eq("producer", { name = f.producer_name, version = f.producer_version }, o.producer)
  c:eq("node_count", f.node_count, o.node_count)
  c:eq("op_histogram", f.op_histogram, o.op_histogram)
  c:eq("node_count_including_subgraphs", f.node_count_including_subgraphs, o.node_count_including_subgraphs)
  c:eq("op_histogram_including_subgraphs", f.op_histogram_including_subgraphs, o.op_histogram_including_subgraphs)
  local keep = {}
  for _, n in ipairs(f.inputs_excluding_initializers or {}) do keep[n] = true end
  local ins = {}
  for _, i in ipairs(f.inputs or {}) do if keep[i.name] then ins[#ins + 1] = i end end
  features(c, "inputs", ins, o.inputs or {})
  features(c, "outputs", f.outputs or {}, o.outputs or {})
  local oi = o.initializers or {}
  c:eq("initializers", { count = f.initializer_count, bytes = f.initializer_bytes }, { count = oi.count,
    bytes = oi.bytes })
  c:eq("initializers including subgraphs",
    { count = f.initializer_count_including_subgraphs, bytes = f.initializer_bytes_including_subgraphs },
    { count = oi.count_including_subgraphs, bytes = oi.bytes_including_subgraphs })
  c:eq("sparse initializers", f.sparse_initializer_count, oi.sparse_count)
  local oc = o.constants or {}
  c:eq("constants", { count = f.constant_node_tensor_count_including_subgraphs,
    bytes = f.constant_node_tensor_bytes_including_subgraphs },
    { count = oc.count, bytes = oc.bytes })
  local os_ = o.subgraphs or {}
  c:eq("subgraphs", { count = f.subgraph_count, max_depth = f.subgraph_max_depth }, { count = os_.count,
    max_depth = os_.max_depth })
  c:eq("subgraph owner ops", f.subgraph_owner_ops, os_.owner_ops)
  c:eq("local functions", #(f.local_functions or {}), #(o.functions or {}))
  c:eq("value_info_count", f.value_info_count, o.value_info_count)
end

-- ---- the corpus -----------------------------------------------------------------------------------
-- Report folders: onnx/exported, onnx/real, and each onnx/onnx-backend/<suite>.
local function folder_of(rel)
  local top, second = rel:match("^([^/]+)/([^/]+)/")
  if top == "onnx-backend" and second then return "onnx/onnx-backend/" .. second end
  return "onnx/" .. (rel:match("^([^/]+)/") or ".")
end

local listing = sh("cd " .. q(root) .. " && find . -name '*.facts.json' | sort")
local models, folders, order = {}, {}, {}
for line in listing:gmatch("[^\n]+") do
  local rel = line:gsub("^%./", ""):gsub("%.facts%.json$", "")
  local model = { rel = rel, path = root .. "/" .. rel .. ".onnx", folder = folder_of(rel) }
  models[#models + 1] = model
  if not folders[model.folder] then folders[model.folder] = { agree = 0,
    total = 0 }; order[#order + 1] = model.folder end
end

-- `-e` preloads the ONNX format module, harmless once lua/mlsh/init.lua requires it itself
local MLSH = bin .. " -e " .. q('require "mlsh.onnx.model"')
local crashed = 0

local function classify(c, r)
  if r.code >= 124 then
    crashed = crashed + 1
    c.diffs[1] = (r.code == 124 and "HANG" or "CRASH") .. " (exit " .. r.code .. "): " .. r.out:sub(1, 200)
    return nil
  elseif r.code ~= 0 then
    c.diffs[1] = "mlsh could not read it (exit " .. r.code .. "): " .. r.out:gsub("\n$", ""):sub(1, 300)
    return nil
  end
  local ok, o = pcall(json.decode, r.out)
  if not ok then c.diffs[1] = "output is not JSON: " .. tostring(o) .. ": " .. r.out:sub(1, 200) return nil end
  return o
end

local function report(c, label, stats)
  stats.total = stats.total + 1
  if #c.diffs == 0 then
    stats.agree = stats.agree + 1
    if verbose then print(string.format("  ok    %s (%d checks)", label, c.n)) end
  else
    print(string.format("  DIFF  %s", label))
    for i, d in ipairs(c.diffs) do
      if i > 8 then print(string.format("        ... %d more", #c.diffs - 8)) break end
      print("        " .. d)
    end
  end
end

-- 1. info --json against the facts
local cmds, results = {}
if parts:find("info", 1, true) then
for i, m in ipairs(models) do
  cmds[i] = string.format("timeout %d %s info --json %s", TIMEOUT, MLSH, q(m.path))
end
results = run_all(cmds, JOBS)
for i, m in ipairs(models) do
  local c = new_check(m.rel)
  local o = classify(c, results[i])
  if o then
    local f = readjson(root .. "/" .. m.rel .. ".facts.json")
    if f then compare_info(c, f, o) else c.diffs[1] = "facts file is not JSON" end
  end
  report(c, m.rel, folders[m.folder])
end
local total_ok, total = 0, 0
for _, name in ipairs(order) do
  local s = folders[name]
  print(string.format("conformance %s: %d/%d models agree (%.1f%%)", name, s.agree, s.total,
    s.total > 0 and 100 * s.agree / s.total or 100))
  total_ok, total = total_ok + s.agree, total + s.total
end
print(string.format("conformance onnx info total: %d/%d models agree", total_ok, total))
end

-- 2. ep --table-only against ONNX Runtime's usability checker (op_only entries)

local TABLES = {
  { key = "mlprogram", file = "ort-1.21.0-mlprogram.md" },
  { key = "neuralnetwork", file = "ort-1.21.0-neuralnetwork.md" },
  { key = "mlprogram_main", file = "ort-main-04f568d-mlprogram.md" },
}
local tables_dir = reference .. "/ort-tables"
local want_ortcheck = parts:find("ortcheck", 1, true) ~= nil
if want_ortcheck and not exists(tables_dir) then
  print("conformance onnx ortcheck: " .. tables_dir .. " is absent; skipped")
elseif want_ortcheck then
  local jobs, meta = {}, {}
  for _, m in ipairs(models) do
    local oc = readjson(root .. "/" .. m.rel .. ".ortcheck.json")
    for _, t in ipairs(TABLES) do
      local entry = oc and oc.coreml and oc.coreml[t.key]
      if entry and entry.op_only then
        jobs[#jobs + 1] = string.format("timeout %d %s ep --table-only --ops-file %s --json %s", TIMEOUT, MLSH,
          q(tables_dir .. "/" .. t.file), q(m.path))
        meta[#jobs] = { model = m, table = t.key, want = entry.op_only }
      elseif entry and entry.op_only_error then
        meta.skipped = (meta.skipped or 0) + 1
      end
    end
  end
  results = run_all(jobs, JOBS)
  local per_table, tables_order = {}, {}
  for i, job in ipairs(meta) do
    local c = new_check(job.model.rel)
    local o = classify(c, results[i])
    if o then
      local w = job.want
      c:eq("partitions", w.num_partitions, o.partitions and #o.partitions)
      c:eq("partition_sizes", w.partition_sizes, o.partition_sizes)
      c:eq("supported_nodes", w.num_supported_nodes, o.supported_nodes)
      c:eq("nodes", w.num_nodes, o.nodes)
      c:eq("unsupported_ops", w.unsupported_ops, o.unsupported_ops)
      c:eq("verdict", w.suitability, o.verdict)
      -- what each partition holds: the checker's JSON names a node "sub:domain:op", or by an integer
      -- whose op does not always match graph.node[index] (its index lookup is not reliable), so
      -- named nodes must all be in mlsh's partition and the integers must account for the rest
      local contents_ok = true
      for pi, part in ipairs(w.partitions or {}) do
        local named, unnamed = {}, 0
        for _, item in ipairs(part) do
          if type(item) == "string" then
            local key = item:gsub("^sub:", "")
            named[key] = (named[key] or 0) + 1
          else
            unnamed = unnamed + 1
          end
        end
        local got = (o.partitions and o.partitions[pi] and o.partitions[pi].ops) or {}
        local extra = 0
        for k, n in pairs(got) do extra = extra + n - (named[k] or 0) end
        for k, n in pairs(named) do if (got[k] or 0) < n then contents_ok = false end end
        if extra ~= unnamed then contents_ok = false end
        if not contents_ok then
          c:eq("partition " .. pi .. " contents", named, got)
          break
        end
      end
      c.n = c.n + 1

    end
    if not per_table[job.table] then per_table[job.table] = { agree = 0,
      total = 0 }; tables_order[#tables_order + 1] = job.table end
    report(c, job.model.rel .. " [" .. job.table .. "]", per_table[job.table])
  end
  for _, t in ipairs(tables_order) do
    local s = per_table[t]
    print(string.format("conformance onnx ortcheck %s: %d/%d models agree (%.1f%%)", t, s.agree, s.total,
      s.total > 0 and 100 * s.agree / s.total or 100))
  end
  if meta.skipped then
    print(string.format("conformance onnx ortcheck: %d model/table pairs skipped "
      .. "(ONNX Runtime's checker itself raised there)", meta.skipped))
  end
end

-- 3. the full predictor against ONNX Runtime 1.20's own GetCapability (.ortep.json records)
if parts:find("ortep", 1, true) then
  local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
  local p = io.popen("lua5.4 " .. q(here .. "/ortep.lua") .. " " .. q(corpus) .. " 2>&1; echo \"#rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("#rc=(%d+)%s*$")) or 255
  io.write((out:gsub("#rc=%d+%s*$", "")))
  if rc ~= 0 then crashed = crashed + 1 end
end

if crashed > 0 then
  print(string.format("conformance onnx: mlsh crashed or hung on %d run(s)", crashed))
  os.exit(1)
end
