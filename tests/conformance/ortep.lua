-- make conformance (ORT EP part): every `<model>.ortep.json` under CORPUS/onnx (ONNX Runtime
-- 1.20.0's own CoreML EP GetCapability, recorded; see the corpus ORTEP.md) against
-- `mlsh ep --ort-version 1.20` for its four runs (NeuralNetwork, MLProgram, each again with
-- RequireStaticInputShapes). A run is identical when the partition count, the node count, the
-- supported count and every partition's node set (names, as a multiset) all agree. Runs whose
-- record carries `session_error` (ORT could not load the model) are skipped and counted.
-- Prints agreement per folder x run kind, then the causes of disagreement ranked by how many runs
-- they touch. Exit status: 0 unless mlsh raised on some model (disagreements are reported).
--   lua5.4 tests/conformance/ortep.lua [CORPUS]        (CORPUS defaults to ../shared/corpus)
-- Env: MLSH_CONFORMANCE_JOBS (worker processes, default 2), VERBOSE=1 (every differing run),
-- MLSH_ORTEP_FILTER (a Lua pattern: only models whose path matches), MLSH_ORTEP_DETAIL=FILE
-- (one line per run written there).
-- The models run in-process (the mlsh library, not the CLI) in worker processes of this script.
local json = require "mlsh.json"

local corpus = arg[1] or "../shared/corpus"
local root = corpus .. "/onnx"
local RUNS = { "NeuralNetwork", "NeuralNetwork+static", "MLProgram", "MLProgram+static" }
local ORT_VERSION = "1.20"

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function readjson(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local ok, v = pcall(json.decode, s)
  return ok and v or nil
end

local function folder_of(rel)
  local top, second = rel:match("^([^/]+)/([^/]+)/")
  if top == "onnx-backend" and second then return "onnx-backend/" .. second end
  return rel:match("^([^/]+)/") or "."
end

-- ---- worker: run mlsh on a shard of the models, one JSON line per run ---------------------------
local function sorted_parts(parts)
  local out = {}
  for i, p in ipairs(parts) do
    local c = {}
    for k, n in ipairs(p) do c[k] = n end
    table.sort(c)
    out[i] = table.concat(c, "\1")
  end
  table.sort(out)
  return out
end

local function compare_run(want, got)
  local r = { p = want.num_partitions == got.p, n = want.num_nodes_in_graph == got.n,
    s = want.num_nodes_supported == got.s }
  local a, b = sorted_parts(want.partitions or {}), sorted_parts(got.parts)
  r.sets = #a == #b
  if r.sets then for i = 1, #a do if a[i] ~= b[i] then r.sets = false break end end end
  r.identical = r.p and r.n and r.s and r.sets
  return r
end

local function run_model(ep, mlsh, rel, rec)
  local lines = {}
  local m, err = mlsh.try_load(root .. "/" .. rel .. ".onnx")
  for _, kind in ipairs(RUNS) do
    local want = rec.runs and rec.runs[kind]
    local line = { rel = rel, kind = kind }
    if not want then
      line.status = "norecord"
    elseif want.session_error and want.session_error ~= json.null then
      line.status = "skipped"
    elseif want.num_nodes_in_graph == nil or want.num_nodes_in_graph == json.null then
      -- no GetCapability line: graph_partitioner.cc skips a graph the optimizers emptied
      -- ("if (graph.NumberOfNodes() == 0) return"), so the record stands for 0 / 0 / 0
      want = { num_partitions = 0, num_nodes_in_graph = 0, num_nodes_supported = 0, partitions = {}, unsupported = {} }
    end
    if line.status == nil and not m then
      line.status = "error"; line.error = tostring(err)
    elseif line.status == nil then
      local o = { model_format = kind:find("^MLProgram") and "mlprogram" or "neuralnetwork",
                  require_static_input_shapes = kind:find("+static", 1, true) ~= nil,
                  ort_version = ORT_VERSION, quick = true }
      local ok, res = pcall(ep.run, m, o)
      if not ok then
        line.status = "error"; line.error = tostring(res)
      else
        local parts = {}
        for i, p in ipairs(res.partitions) do parts[i] = p.node_names end
        local c = compare_run(want, { p = #res.partitions, n = res.nodes, s = res.supported_nodes, parts = parts })
        -- ORT's logged refusal messages that mlsh gives word for word for some node of the run
        local mine = {}
        for _, u in ipairs(res.unsupported) do if u.reason then mine[u.reason] = true end end
        line.reasons, line.reasons_found = 0, 0
        for _, text in ipairs(want.reasons or {}) do
          line.reasons = line.reasons + 1
          if mine[text] then line.reasons_found = line.reasons_found + 1
          else line.missing_reason = line.missing_reason or text end
        end
        line.status = c.identical and "identical" or "differs"
        line.p, line.n, line.s, line.sets = c.p, c.n, c.s, c.sets
        line.want = { want.num_partitions, want.num_nodes_in_graph, want.num_nodes_supported }
        line.got = { #res.partitions, res.nodes, res.supported_nodes }
        if not c.identical then
          -- attribute by the unsupported lists, as (name, op) pairs: names alone are often empty
          local function key(name, op) return (name or "") .. "\1" .. tostring(op):gsub("^.*:", "") end
          local wun = {}
          for _, u in ipairs(want.unsupported or {}) do local k = key(u.name, u.op_type); wun[k] = (wun[k] or 0) + 1 end
          line.ort_only, line.mlsh_only = {}, {}
          for _, u in ipairs(res.unsupported) do
            local k = key(u.name, u.op)
            if (wun[k] or 0) > 0 then wun[k] = wun[k] - 1
            else line.ort_only[#line.ort_only + 1] = { u.name or "", tostring(u.op):gsub("^.*:", ""), u.reason
              or "?" } end
          end
          for k, cnt in pairs(wun) do
            local name, op = k:match("^(.-)\1(.*)$")
            for _ = 1, cnt do line.mlsh_only[#line.mlsh_only + 1] = { name, op } end
          end
          line.ort_reasons = want.reasons
        end
      end
    end
    lines[#lines + 1] = json.encode(line)
  end
  if m then m:close() end
  return lines
end

local function worker(k, n)
  local mlsh = require "mlsh"
  require "mlsh.onnx.model"
  local ep = require "mlsh.onnx.ep"
  local filter = os.getenv("MLSH_ORTEP_FILTER")
  local listing = sh("cd " .. q(root) .. " && find . -name '*.ortep.json' | sort")
  local i = 0
  for line in listing:gmatch("[^\n]+") do
    local rel = line:gsub("^%./", ""):gsub("%.ortep%.json$", "")
    if not filter or rel:find(filter) then
      i = i + 1
      if i % n == k then
        local rec = readjson(root .. "/" .. rel .. ".ortep.json")
        local out
        if not rec then
          out = { json.encode({ rel = rel, kind = "*", status = "error", error = "record is not JSON" }) }
        else
          out = run_model(ep, mlsh, rel, rec)
        end
        io.write(table.concat(out, "\n"), "\n")
        io.flush()
      end
    end
  end
end

if arg[2] == "--worker" then
  worker(tonumber(arg[3]), tonumber(arg[4]))
  os.exit(0)
end

-- ---- parent: spawn the workers, aggregate -------------------------------------------------------
if sh("test -d " .. q(root) .. " && echo yes"):find("yes") == nil then
  print("conformance ortep: " .. root .. " is absent; nothing to check (this is not a failure)")
  os.exit(0)
end
local JOBS = tonumber(os.getenv("MLSH_CONFORMANCE_JOBS") or "2") or 2
local handles = {}
for k = 0, JOBS - 1 do
  handles[#handles + 1] = io.popen(string.format("lua5.4 %s %s --worker %d %d 2>&1", q(arg[0]), q(corpus), k, JOBS))
end
local results = {}
for _, h in ipairs(handles) do
  for line in h:lines() do
    local ok, v = pcall(json.decode, line)
    if ok and type(v) == "table" then results[#results + 1] = v else print("worker: " .. line) end
  end
  h:close()
end
table.sort(results, function(a, b) if a.rel ~= b.rel then return a.rel < b.rel end return a.kind < b.kind end)

local detail = os.getenv("MLSH_ORTEP_DETAIL")
local detail_f = detail and io.open(detail, "w")
local stats, folders = {}, {}
local skipped, errors = 0, 0
local causes = {}
local function cause(key, run)
  local c = causes[key]
  if not c then c = { n = 0, runs = {}, example = run } causes[key] = c end
  c.n = c.n + 1
end
local function bump(key, r)
  local s = stats[key]
  if not s then s = { runs = 0, p = 0, n = 0, s = 0, sets = 0, identical = 0 } stats[key] = s end
  s.runs = s.runs + 1
  for _, f in ipairs({ "p", "n", "s", "sets" }) do if r[f] then s[f] = s[f] + 1 end end
  if r.status == "identical" then s.identical = s.identical + 1 end
end
local reasons, reasons_found, missing_reasons = 0, 0, {}
for _, r in ipairs(results) do
  if detail_f then detail_f:write(json.encode(r), "\n") end
  reasons, reasons_found = reasons + (r.reasons or 0), reasons_found + (r.reasons_found or 0)
  if r.missing_reason then missing_reasons[r.missing_reason] = (missing_reasons[r.missing_reason] or 0) + 1 end
  local folder = folder_of(r.rel)
  if not folders[folder] then folders[folder] = true; folders[#folders + 1] = folder end
  if r.status == "skipped" then skipped = skipped + 1
  elseif r.status == "error" or r.status == "norecord" then
    errors = errors + 1
    print(string.format("  ERROR %s [%s]: %s", r.rel, r.kind, tostring(r.error or r.status)))
  else
    bump(folder .. "\0" .. r.kind, r)
    bump("total\0" .. r.kind, r)
    bump("total\0all", r)
    if r.status == "differs" then
      local run = r.rel .. " [" .. r.kind .. "]"
      if os.getenv("VERBOSE") then
        print(string.format("  DIFF  %s: ORT %s, mlsh %s", run, json.encode(r.want), json.encode(r.got)))
      end
      if not r.n then cause("node count differs (basic passes)", run) end
      local seen = {}
      for _, x in ipairs(r.ort_only or {}) do
        local key = "mlsh refuses, ORT takes: " .. x[2] .. ": " .. x[3]:gsub("%d+", "N"):gsub("input [^ ]+ ",
          "input X ")
        if not seen[key] then seen[key] = true; cause(key, run .. " " .. x[1]) end
      end
      for _, x in ipairs(r.mlsh_only or {}) do
        local key = "mlsh takes, ORT refuses: " .. x[2]
        if not seen[key] then seen[key] = true; cause(key, run .. " " .. x[1]) end
      end
      if not next(seen) and r.n then cause("same nodes supported, grouped differently", run) end
    end
  end
end
if detail_f then detail_f:close() end

local function pct(a, b) return b > 0 and 100 * a / b or 100 end
print(string.format("conformance ortep (ONNX Runtime %s GetCapability):", ORT_VERSION))
print(string.format("  %-26s %-21s %5s %9s %9s %9s %9s %9s", "folder", "run", "runs", "parts", "nodes", "supported",
  "node-sets", "identical"))
table.sort(folders)
folders[#folders + 1] = "total"
for _, folder in ipairs(folders) do
  local kinds = {}
  for _, k in ipairs(RUNS) do kinds[#kinds + 1] = k end
  if folder == "total" then kinds[#kinds + 1] = "all" end
  for _, kind in ipairs(kinds) do
    local s = stats[folder .. "\0" .. kind]
    if s then
      print(string.format("  %-26s %-21s %5d %9d %9d %9d %9d %5d %5.1f%%", folder, kind, s.runs, s.p, s.n, s.s, s.sets,
        s.identical, pct(s.identical, s.runs)))
    end
  end
end
print(string.format("  skipped %d runs whose record has session_error (ORT could not load the model)", skipped))
print(string.format("  ORT's logged refusal messages given word for word by mlsh: %d/%d", reasons_found, reasons))
local missing_list = {}
for text, n in pairs(missing_reasons) do missing_list[#missing_list + 1] = { text, n } end
table.sort(missing_list, function(a, b) if a[2] ~= b[2] then return a[2] > b[2] end return a[1] < b[1] end)
for i, m in ipairs(missing_list) do
  if i > 10 then break end
  print(string.format("    not word for word in %d run(s): %s", m[2], m[1]:sub(1, 100)))
end
local keys = {}
for k in pairs(causes) do keys[#keys + 1] = k end
table.sort(keys, function(a,
  b) if causes[a].n ~= causes[b].n then return causes[a].n > causes[b].n end return a < b end)
if #keys > 0 then print("  causes of disagreement (runs touched, an example):") end
for i, k in ipairs(keys) do
  if i > tonumber(os.getenv("MLSH_ORTEP_CAUSES") or "40") then print(string.format("    … %d more",
    #keys - i + 1)) break end
  print(string.format("    %5d  %s   e.g. %s", causes[k].n, k, causes[k].example))
end
if errors > 0 then
  print(string.format("conformance ortep: mlsh raised on %d run(s)", errors))
  os.exit(1)
end
