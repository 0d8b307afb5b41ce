-- Conformance of `mlsh check` over ../shared/corpus/coreml*/ (chained into `make conformance`):
--   * required_spec.version never exceeds the spec the model records (its .facts.json), and every
--     reason names a real op / layer / model type / feature of that model;
--   * check (rules + placement) never crashes, for every compute-unit setting, with and without a
--     deployment target; no built-in rule raises; placement output is well formed.
-- Prints each disagreement and the agreement per folder. Exit status 1 only when something crashed.
--   lua5.4 tests/conformance/check.lua ../shared/corpus     (LUA_PATH as in the Makefile)
local json = require "mlsh.json"
local spec = require "mlsh.spec"

package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local C = require "common"

local corpus = arg[1] or "../shared/corpus"
local bin, TIMEOUT, sh, q, readjson, models_in = C.bin, C.TIMEOUT, C.sh, C.q, C.readjson, C.models_in
local verbose = os.getenv("VERBOSE")
C.require_corpus(corpus, "check conformance")

local function recorded_spec(f)
  if not f then return nil end
  if f.specificationVersion then return f.specificationVersion end
  if f.spec and f.spec.specificationVersion then return f.spec.specificationVersion end
  if f.metadata_json and f.metadata_json.specificationVersion then
    return math.tointeger(tonumber(f.metadata_json.specificationVersion))
  end
  return nil
end

-- What the model really contains, from `mlsh info --json`: op types, layer types, model types, feature names.
local function inventory(info, inv)
  inv = inv or { ops = {}, layers = {}, types = {}, features = {} }
  if info.model_type and info.model_type ~= json.null then inv.types[info.model_type] = true end
  for t in pairs(info.op_histogram or {}) do inv.ops[t] = true end
  for t in pairs(info.layer_histogram or {}) do inv.layers[t] = true end
  for _, key in ipairs({ "inputs", "outputs", "states" }) do
    for _, f in ipairs(info[key] or {}) do inv.features[f.name] = true end
  end
  for _, fn in ipairs(info.functions or {}) do
    for _, key in ipairs({ "inputs", "outputs", "states" }) do
      for _, f in ipairs(fn[key] or {}) do inv.features[f.name] = true end
    end
  end
  for _, sub in ipairs(info.pipeline or {}) do inventory(sub, inv) end
  return inv
end

local FEATURES = {}
for _, f in ipairs(spec.features()) do FEATURES[f.id] = true end

-- Does a reason name something real? Returns nil or the problem.
local function reason_problem(r, inv)
  local what = r.what or ""
  if r.kind == "op" or r.kind == "op_version" then
    local t = what:match("op ([%w_]+)")
    if not t or not inv.ops[t] then return "names op '" .. tostring(t) .. "' which the model does not have" end
  elseif r.kind == "layer" then
    local t = what:match("layer ([%w_]+)")
    if not t or not inv.layers[t] then return "names layer '" .. tostring(t) .. "' which the model does not have" end
  elseif r.kind == "model_type" then
    local t = what:match("model type ([%w_]+)") or (what:find("ML program", 1, true) and "mlProgram")
    if not t or not inv.types[t] then return "names model type '" .. tostring(t) .. "' which the model is not" end
  elseif r.kind == "feature" or r.kind == "update_only" then
    if r.feature == nil or r.feature == json.null or not FEATURES[r.feature] then
      return "feature reason without a known feature id"
    end
    if r.value and r.value ~= json.null and not inv.features[r.value] then
      return "names feature '" .. r.value .. "' which the model does not have"
    end
  else
    return "unknown reason kind '" .. tostring(r.kind) .. "'"
  end
  return nil
end

local UNITS = { "all", "cpu_and_ne", "cpu_and_gpu", "cpu_only" }
local DEVICES = { ANE = true, GPU = true, CPU = true }

local crashed, runs_total, runs_ok = 0, 0, 0
local total_agree, total = 0, 0
for _, folder in ipairs({ "coreml", "coreml-real" }) do
  local dir = corpus .. "/" .. folder
  local agree, n = 0, 0
  for _, entry in ipairs(models_in(dir)) do
    local path = dir .. "/" .. entry.model
    local facts = readjson(entry.facts)
    local want = recorded_spec(facts)
    local problems = {}
    local info_out, info_code = sh(string.format("timeout %d %s info --json %s 2>/dev/null", TIMEOUT, bin, q(path)))
    local info_ok, info = pcall(json.decode, info_out)
    if info_code ~= 0 or not info_ok then
      -- a model mlsh info cannot read is the other runner's business; check must still not crash
      info = nil
    end
    local inv = info and inventory(info) or nil
    local required, declared
    for _, unit in ipairs(UNITS) do
      for _, target in ipairs({ "", "--target iOS15 " }) do
        runs_total = runs_total + 1
        local out, code = sh(string.format("timeout %d %s check --format json --compute-units %s %s%s 2>&1", TIMEOUT,
          bin, unit, target, q(path)))
        local ok, obj = pcall(json.decode, out)
        if code >= 124 then
          crashed = crashed + 1
          problems[#problems + 1] = string.format("%s (exit %d) with %s %s: %s", code == 124 and "HANG" or "CRASH",
            code, unit, target, out:sub(1, 200))
        elseif code == 2 and info then
          crashed = crashed + 1
          problems[#problems + 1] = string.format("check failed (exit 2) on a readable model with %s %s: %s", unit, target,
            out:gsub("\n$", ""):sub(1, 300))
        elseif code == 2 then
          runs_ok = runs_ok + 1 -- unreadable model: exit 2 is the contract
        elseif not ok then
          crashed = crashed + 1
          problems[#problems + 1] = "check output is not JSON: " .. out:sub(1, 200)
        else
          local bad = false
          for _, f in ipairs(obj.findings) do
            if f.message:match("^rule [%w_.%-]+ raised") or f.message:match("malformed finding") then
              bad = true
              problems[#problems + 1] = "rule error: " .. f.message
            end
          end
          local p = obj.placement
          local counted = 0
          for _, s in ipairs(p.segments) do counted = counted + s.count end
          if counted ~= #p.ops then bad = true; problems[#problems + 1] = "segments do not cover the ops" end
          for _, o in ipairs(p.ops) do
            if not DEVICES[o.device] or type(o.reason) ~= "string" then
              bad = true
              problems[#problems + 1] = "bad placement entry for " .. tostring(o.op)
              break
            end
          end
          for _, k in ipairs({ "ops", "work" }) do
            local v = p.ane_coverage[k]
            if type(v) ~= "number" or v < 0 or v > 1 then bad = true; problems[#problems + 1] = "coverage out of 0..1" end
          end
          if (unit == "cpu_only" or unit == "cpu_and_gpu") and p.ane_coverage.ops ~= 0 then
            bad = true
            problems[#problems + 1] = unit .. " placed ops on the ANE"
          end
          if bad then crashed = crashed + 1 else runs_ok = runs_ok + 1 end
          required = required or obj.required_spec
          declared = obj.spec_version
        end
      end
    end
    -- required spec vs the recorded one, and the reasons
    if required then
      if want and required.version > want then
        problems[#problems + 1] = string.format("required spec %d exceeds the recorded spec %d (%s)", required.version,
          want, required.reasons[1] and required.reasons[1].what or "?")
      end
      if inv then
        for _, r in ipairs(required.reasons) do
          local pr = reason_problem(r, inv)
          if pr then problems[#problems + 1] = string.format("reason '%s' %s", r.what, pr) end
          if r.spec > required.version then problems[#problems + 1] = "reason above the required version: " .. r.what end
        end
      end
    elseif #problems == 0 and info then
      problems[#problems + 1] = "no check output"
    end
    n = n + 1
    if #problems == 0 then
      agree = agree + 1
      if verbose then
        local top = required and required.reasons[1]
        print(string.format("  ok    %s/%s recorded %s, required %s%s", folder, entry.model, tostring(want),
          required and required.version or "-", top and (" (" .. top.what .. ")") or ""))
      end
    else
      print(string.format("  DIFF  %s/%s (recorded %s, declared %s, required %s)", folder, entry.model, tostring(want),
        tostring(declared), required and required.version or "-"))
      for i, d in ipairs(problems) do
        if i > 8 then print(string.format("        ... %d more", #problems - 8)) break end
        print("        " .. d)
      end
    end
  end
  print(string.format("check conformance %s: %d/%d models agree (required spec <= recorded, reasons name real ops/features, "
    .. "no crash)", folder, agree, n))
  total_agree, total = total_agree + agree, total + n
end
print(string.format("check conformance total: %d/%d models agree; %d/%d check runs crash-free (%d compute-unit settings x "
  .. "with/without --target)", total_agree, total, runs_ok, runs_total, #UNITS))
if crashed > 0 then
  print(string.format("check conformance: %d run(s) crashed, hung or produced malformed output", crashed))
  os.exit(1)
end
