-- Compression sweep: per weight, try a ladder of settings and keep the smallest whose SNR meets the
-- floor; print size and SNR per candidate (the model under each uniform setting, and the per-layer
-- mix), then write the mix. Weights no rung can hold stay uncompressed.
--   mlsh recipes/compress-sweep.lua MODEL --min-snr 30 -o OUT [--weight-threshold N] [--dry-run]
--                                         [--prune] [--json] [--threads N]
-- --prune adds pruning rungs (50% magnitude, alone and with 4-bit palettization on iOS18).
-- iOS18-only rungs (3-bit, int4 per-block, grouped LUTs, joint) are tried only on iOS18 programs.
-- Each candidate is also written to a temporary folder and run on the interpreter against the
-- original (mlsh.compress_check): its output SNR (worst output) and top-1 agreement sit next to its
-- worst weight SNR. --random SEED / --samples N / --input NAME=FILE choose the inputs (default: one
-- random sample, seed 0); --no-check-outputs skips the runs. A model the interpreter cannot run
-- gets "-" and a note.
-- Exit status: 0, 1 when the model cannot be read or written, 2 on bad usage.
local mlsh = require "mlsh"
local json = mlsh.json
local compress = require "mlsh.compress"
local config = require "mlsh.compress.config"
local select = require "mlsh.compress.select"
local target = require "mlsh.compress.target"
local spec = require "mlsh.spec"
local check = require "mlsh.compress_check"

local USAGE = "usage: mlsh recipes/compress-sweep.lua MODEL --min-snr DB -o OUT [--weight-threshold N] [--dry-run] "
  .. "[--prune] [--json] [--threads N] [--random SEED] [--samples N] [--input NAME=FILE]... [--no-check-outputs]"

local LADDER = {
  { label = "palettize 2-bit", s = { palettize = { nbits = 2 } } },
  { label = "palettize 3-bit", s = { palettize = { nbits = 3 } } },
  { label = "palettize 4-bit", s = { palettize = { nbits = 4 } } },
  { label = "palettize 4-bit g16", s = { palettize = { nbits = 4, granularity = "per_grouped_channel", group_size = 16 } } },
  { label = "int4 per-block 32", s = { quantize = { dtype = "int4", granularity = "per_block", block_size = 32 } } },
  { label = "palettize 6-bit", s = { palettize = { nbits = 6 } } },
  { label = "int8 per-channel", s = { quantize = { dtype = "int8" } } },
  { label = "palettize 8-bit", s = { palettize = { nbits = 8 } } },
}
local PRUNE_RUNGS = {
  { label = "prune 50%", s = { prune = { sparsity = 0.5 } } },
  { label = "prune 50% + pal 4-bit", s = { prune = { sparsity = 0.5 }, palettize = { nbits = 4 } } },
}

local function die(msg, code)
  io.stderr:write("compress-sweep: ", msg, "\n", USAGE, "\n")
  return code or 2
end

local function fmt_bytes(b)
  if b >= 1 << 20 then return string.format("%.2f MiB", b / (1 << 20)) end
  if b >= 1 << 10 then return string.format("%.1f KiB", b / 1024) end
  return string.format("%d B", b)
end

local function fmt_snr(v) return v == math.huge and "inf" or string.format("%.2f", v) end

local function parse_args(args)
  local o = { min_snr = nil, threshold = config.DEFAULTS.weight_threshold, check = { inputs = {} } }
  local i = 1
  while i <= #args do
    local a = args[i]
    local function val()
      local v = args[i + 1]
      if not v then error(a .. " needs a value", 0) end
      i = i + 1
      return v
    end
    local ok, e = pcall(function()
      if a == "--min-snr" then o.min_snr = tonumber(val()) or error("--min-snr needs a number (dB)", 0)
      elseif a == "-o" or a == "--output" then o.out = val()
      elseif a == "--weight-threshold" then o.threshold = math.tointeger(tonumber(val())) or error("--weight-threshold needs an integer", 0)
      elseif a == "--threads" then o.threads = math.tointeger(tonumber(val())) or error("--threads needs an integer", 0)
      elseif a == "--dry-run" then o.dry_run = true
      elseif a == "--prune" then o.prune = true
      elseif a == "--json" then o.json = true
      elseif a == "--no-check-outputs" then o.no_check = true
      elseif a == "--random" then o.check.random = math.tointeger(tonumber(val())) or error("--random needs an integer", 0)
      elseif a == "--samples" then o.check.samples = math.tointeger(tonumber(val())) or error("--samples needs an integer", 0)
      elseif a == "--input" then
        local k, v = val():match("^([^=]+)=(.+)$")
        if not k then error("--input takes NAME=FILE", 0) end
        o.check.inputs[k] = v
      elseif a == "-h" or a == "--help" then o.help = true
      elseif a:sub(1, 1) == "-" then error("unknown option " .. a, 0)
      elseif o.path then error("one model at a time", 0)
      else o.path = a end
    end)
    if not ok then return nil, tostring(e) end
    i = i + 1
  end
  return o
end

-- The rungs this model's target can hold.
local function usable_rungs(m, o)
  local ladder = {}
  for _, r in ipairs(LADDER) do ladder[#ladder + 1] = r end
  if o.prune then for _, r in ipairs(PRUNE_RUNGS) do ladder[#ladder + 1] = r end end
  local min_opset = math.huge
  for _, fn in ipairs(m:functions()) do min_opset = math.min(min_opset, spec.opset_spec(fn.opset) or m.spec_version) end
  local rungs = {}
  for _, r in ipairs(ladder) do
    r.setting = config.setting(r.s)
    if not target.ios18_reason(r.setting) or min_opset >= target.IOS18 then rungs[#rungs + 1] = r end
  end

  return rungs
end

-- Evaluate every rung on every eligible weight: the weights (with results) and the fixed bytes.
local function evaluate(m, o, rungs)
  local inv = m:inventory({ threshold = o.threshold })
  local fixed, weights = 0, {}
  for _, e in ipairs(inv) do
    if e.op_type == "const" and not select.ineligible(e, o.threshold) then
      weights[#weights + 1] = { e = e, results = {} }
    else
      fixed = fixed + (e.bytes or 0)
    end
  end
  local bar = compress.progress.new{ total = #weights * #rungs, quiet = o.json }
  local done = 0
  for _, w in ipairs(weights) do
    local e = w.e
    local values = e:values()
    local wd = e.dtype == "fp16" and "fp16" or "fp32"
    local args_k = { weight_dtype = wd, axis = select.output_axis(e), input_axis = select.input_axis(e), threads = o.threads }
    for k, r in ipairs(rungs) do
      done = done + 1
      bar:update(done, e.name .. ": " .. r.label)
      local skip = compress.check_setting(r.setting, e, "op_name")
      if skip then
        w.results[k] = { skip = skip }
      else
        local ok, res = pcall(compress.tensor, values, r.setting, args_k)
        if ok then
          local mt = compress.metrics(values, res.reconstructed, { weight_dtype = wd })
          w.results[k] = { bytes = res.nbytes, snr = mt.snr_db }
        else
          w.results[k] = { skip = tostring(res) }
        end
      end
    end
    w.dense = e.bytes
  end
  bar:done()

  return weights, fixed, inv
end

-- Model-level candidates: every uniform rung, then the per-layer mix (the winner).
local function candidates_of(weights, rungs, fixed, o)
  local candidates = {}
  for k, r in ipairs(rungs) do
    local size, worst, fails, n = fixed, math.huge, 0, 0
    for _, w in ipairs(weights) do
      local x = w.results[k]
      if x.bytes then
        size, worst, n = size + x.bytes, math.min(worst, x.snr), n + 1
        if x.snr < o.min_snr then fails = fails + 1 end
      else
        size = size + w.dense
      end
    end
    candidates[#candidates + 1] = { label = "all " .. r.label, bytes = size, worst = worst, fails = fails, n = n }
  end
  local mix, mix_size, mix_worst = {}, fixed, math.huge
  for _, w in ipairs(weights) do
    local best
    for k in ipairs(rungs) do
      local x = w.results[k]
      if x.bytes and x.snr >= o.min_snr and x.bytes < w.dense and (not best or x.bytes < w.results[best].bytes) then best = k end
    end
    w.choice = best
    if best then
      mix[w.e.op] = rungs[best].s
      mix_size = mix_size + w.results[best].bytes
      mix_worst = math.min(mix_worst, w.results[best].snr)
    else
      mix_size = mix_size + w.dense
    end
  end
  candidates[#candidates + 1] = { label = "per-layer mix (winner)", bytes = mix_size, worst = mix_worst, fails = 0, n = #weights }

  return candidates, mix
end

-- The policy each candidate stands for: every uniform rung, then the mix.
local function candidate_policies(rungs, mix, o)
  local list = {}
  for k, r in ipairs(rungs) do
    local p = { weight_threshold = o.threshold, threads = o.threads, quiet = true }
    for key, v in pairs(r.s) do p[key] = v end
    list[k] = p
  end
  list[#list + 1] = { op_name = mix, weight_threshold = o.threshold, threads = o.threads, quiet = true }
  return list
end

local function temp_dir()
  local name = os.tmpname()
  os.remove(name)
  assert(mlsh.core.fs.mkdir_p(name))
  return name
end

-- Output SNR of every candidate against the original (c.outputs: mlsh.compress_check's result, or
-- c.output_error). Returns a note when the original itself cannot be run.
local function check_outputs(m, o, rungs, candidates, mix)
  local ok, st = pcall(check.reference, m, o.check)
  if not ok then return "output SNR not measured: " .. tostring(st) end
  local dir = temp_dir()
  for k, policy in ipairs(candidate_policies(rungs, mix, o)) do
    local c, path = candidates[k], string.format("%s/c%d.mlpackage", dir, k)
    local cok, res = pcall(function()
      compress.save(m, path, policy)
      return check.check_file(st, path)
    end)
    if cok then c.outputs = res else c.output_error = type(res) == "table" and res.msg or tostring(res) end
    mlsh.core.fs.remove_tree(path)
  end
  mlsh.core.fs.remove_tree(dir)
  return nil, st
end

local function out_cell(c)
  if not c.outputs then return "-" end
  local t = c.outputs.outputs[1] and c.outputs.outputs[1].top1_agreement
  return check.fmt_db(c.outputs.min_snr_db) .. (t and string.format(" (top-1 %.0f%%)", 100 * t) or "")
end

-- Write the winner through compress.model (or the model unchanged): the report, or nil, why.
local function write_winner(m, o, mix)
  local report
  if next(mix) and not o.dry_run then
    local ok, res = pcall(compress.save, m, o.out, { op_name = mix, weight_threshold = o.threshold, threads = o.threads,
                                                      quiet = true })
    if not ok then
      local msg = type(res) == "table" and res.msg or tostring(res)
      return nil, msg
    end
    report = res
  elseif not o.dry_run then
    local ok, res = pcall(m.save, m, o.out)
    if not ok then return nil, tostring(res) end
  end
  return report or true
end

local function print_json(o, candidates, weights, rungs, original, note)
  local cands, per = {}, {}
  for k, c in ipairs(candidates) do
    cands[k] = { label = c.label, bytes = c.bytes, worst_snr_db = c.worst == math.huge and json.null or c.worst,
                 below_floor = c.fails, compressed = c.n, outputs_check = c.outputs and check.json(c.outputs) or json.null,
                 output_snr_db = c.outputs and check.json(c.outputs).min_snr_db or json.null }
  end
  for k, w in ipairs(weights) do
    local tries = {}
    for j, r in ipairs(rungs) do
      local x = w.results[j]
      tries[j] = { setting = r.label, bytes = x.bytes or json.null, snr_db = x.snr or json.null, skipped = x.skip or json.null }
    end
    per[k] = { name = w.e.name, bytes = w.dense, choice = w.choice and rungs[w.choice].label or json.null,
               candidates = json.array(tries) }
  end
  print(json.encode({ model = o.path, output = o.dry_run and json.null or o.out, min_snr = o.min_snr,
                      original_bytes = original, candidates = json.array(cands), weights = json.array(per),
                      outputs_note = note or json.null }, true))
end

local function print_text(o, candidates, weights, rungs, original, inv, report, note)
  print(string.format("%s: %d weights to compress (of %d), floor %.4g dB, %d settings tried each",
    o.path, #weights, #inv, o.min_snr, #rungs))
  print("")
  print(string.format("%-28s %12s %8s %14s %24s", "candidate", "size", "ratio", "worst SNR dB", "output SNR dB"))
  print(string.format("%-28s %12s %8s %14s %24s", "original", fmt_bytes(original), "1.00x", "inf", "inf"))
  for _, c in ipairs(candidates) do
    print(string.format("%-28s %12s %7.2fx %14s %24s%s", c.label, fmt_bytes(c.bytes), original / c.bytes,
      c.worst == math.huge and "-" or fmt_snr(c.worst), out_cell(c), c.fails > 0 and string.format("  (%d under the floor)", c.fails) or ""))
  end
  if note then print(note) end
  for _, c in ipairs(candidates) do
    if c.output_error then print(string.format("%s: output SNR not measured: %s", c.label, c.output_error)) end
  end
  print("")
  for _, w in ipairs(weights) do
    local parts = {}
    for k, r in ipairs(rungs) do
      local x = w.results[k]
      local cell = x.bytes and string.format("%s %s/%s dB", r.label, fmt_bytes(x.bytes), fmt_snr(x.snr)) or (r.label .. " skipped")
      if w.choice == k then cell = "[" .. cell .. "]" end
      parts[#parts + 1] = cell
    end
    print(string.format("%s (%s): %s", w.e.name, fmt_bytes(w.dense), w.choice and rungs[w.choice].label or "left uncompressed"))
    print("    " .. table.concat(parts, ", "))
  end
  if report then
    -- the written model's own measurements must be the sweep's
    local agree = true
    for _, row in ipairs(report.weights) do
      for _, w in ipairs(weights) do
        if w.e.name == row.name and w.choice and row.snr_db and math.abs(row.snr_db - w.results[w.choice].snr) > 1e-9 then agree = false end
      end
    end
    print("")
    print(string.format("wrote %s: weights %s -> %s (%.2fx), every compressed weight >= %.4g dB%s", o.out,
      fmt_bytes(report.totals.bytes_before), fmt_bytes(report.totals.bytes_after), report.totals.ratio or 1, o.min_snr,
      agree and "" or " (warning: the written SNRs differ from the sweep's)"))
  elseif o.dry_run then
    print("\n(dry run: nothing written)")
  else
    print(string.format("\nno setting meets %.4g dB on any weight: wrote %s unchanged", o.min_snr, o.out))
  end
end

local function main(args)
  local o, perr = parse_args(args)
  if not o then return die(perr) end
  if o.help then print(USAGE) return 0 end
  if not o.path then return die("no model given") end
  if not o.min_snr then return die("give the floor: --min-snr DB") end
  if not o.out and not o.dry_run then return die("give -o OUT (or --dry-run)") end

  local m, err = mlsh.try_load(o.path)
  if not m then io.stderr:write("mlsh: ", err, "\n") return 1 end
  if m.model_type ~= "mlProgram" then m:close() return die(o.path .. " is not an ML program") end
  local rungs = usable_rungs(m, o)
  local weights, fixed, inv = evaluate(m, o, rungs)
  local candidates, mix = candidates_of(weights, rungs, fixed, o)
  local original = fixed
  for _, w in ipairs(weights) do original = original + w.dense end
  local note = not o.no_check and check_outputs(m, o, rungs, candidates, mix) or nil
  local report, werr = write_winner(m, o, mix)
  m:close()
  if not report then io.stderr:write("mlsh: ", werr, "\n") return 1 end
  if o.json then
    print_json(o, candidates, weights, rungs, original, note)
    return 0
  end
  print_text(o, candidates, weights, rungs, original, inv, report ~= true and report or nil, note)
  return 0
end

return main(arg or {})
