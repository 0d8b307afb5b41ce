-- mlsh.compress_check — output-level check of a model against a reference: the original of a
-- compressed model (`mlsh compress --check-outputs`, the sweep recipe, playbooks 4a-4c and 5b).
-- Both run on the interpreter (mlsh.run) with the same inputs; per output: SNR of the model's
-- output against the reference's, max |error|, and top-1 agreement when the output looks like class
-- scores (mlsh.run.compare's rule). SNR = 10 log10(sum ref^2 / sum (ref - out)^2), over all samples.
--   M.compare(ref, m, opts) -> result            (raises a one-line error: differing inputs, a run)
--   M.reference(ref, opts) -> state ; M.against(state, m) -> result   (the same in two halves: the
--     reference runs first, e.g. before `compress --in-place` replaces the file)
--   opts: inputs ({name = file}), random (seed; default 0 without inputs), samples (default 1;
--     1 with inputs), precision ("model"), precision_model (the model's, default = precision)
--   result = {samples, seed, given_inputs, precision, outputs = {{name, snr_db, max_abs_err,
--             top1_agreement?, missing?}}, min_snr_db}
--   M.check_file(state, path) -> result (M.against on the model at path)
--   M.save(m, path, policy, check_opts) -> compress report with .outputs_check (compress + check)
--   M.json(result) / M.text(result, weight_snr_db) ; M.add_flags(options) (cmd/compress's flags)
--   M.context_compare(ctx, opts) / M.evidence(result) / M.matches(result, db): for playbooks
local M = {}

-- mlsh.run (the interpreter's front) is loaded when a check runs: `mlsh compress` without
-- --check-outputs loads this module for its flags only (start-up cost)
local run = setmetatable({}, { __index = function(t, k)
  local r = require "mlsh.run"
  setmetatable(t, { __index = r })
  return r[k]
end })

-- "fp32[1,3,224,224]" / "image RGB 224x224": what a feature looks like to a caller.
local function describe(f)
  if f.kind == "image" then return string.format("image %s %sx%s", tostring(f.color_space), tostring(f.width), tostring(f.height)) end
  local shape = {}
  for i, d in ipairs(f.shape or {}) do shape[i] = tostring(d) end
  if f.kind ~= "multiArray" then return tostring(f.kind) end
  return string.format("%s[%s]", tostring(f.dtype), table.concat(shape, ","))
end

local function features(m, fn)
  local ok, list = pcall(m.inputs, m, fn)
  if not ok then error(tostring(list), 0) end
  local by = {}
  for _, f in ipairs(list) do by[f.name] = describe(f) end
  return by, list
end

-- Both models must take the same inputs (names, kinds, dtypes, shapes): raises otherwise.
function M.same_inputs(ref, m, fn)
  local a, list = features(ref, fn)
  local b, list_b = features(m, fn)
  local rp, mp = ref.path or "the reference", m.path or "the model"
  for _, f in ipairs(list) do
    if not b[f.name] then error(string.format("%s has input '%s' (%s) which %s lacks: the models do not take the same inputs", rp, f.name, a[f.name], mp), 0) end
    if a[f.name] ~= b[f.name] then
      error(string.format("input '%s' is %s in %s but %s in %s: the models do not take the same inputs", f.name, a[f.name], rp, b[f.name], mp), 0)
    end
  end
  for _, f in ipairs(list_b) do
    if not a[f.name] then error(string.format("%s has input '%s' (%s) which %s lacks: the models do not take the same inputs", mp, f.name, b[f.name], rp), 0) end
  end
end

local function settings(opts)
  opts = opts or {}
  local given = opts.inputs and next(opts.inputs) ~= nil
  local seed = opts.random or (not given and 0 or nil)
  local samples = given and not opts.random and 1 or (opts.samples or 1)
  if math.type(samples) ~= "integer" or samples < 1 then error("samples must be a positive integer", 0) end
  return { inputs = given and opts.inputs or nil, seed = seed, samples = samples, fn = opts.fn,
           precision = opts.precision or "model", precision_model = opts.precision_model or opts.precision or "model" }
end

local function run_opts(s, k, precision)
  return { precision = precision, fn = s.fn, random = s.seed and (s.seed + (k - 1) * 1000) or nil }
end

-- Run the reference on every sample; its outputs are kept (as Arrays) for M.against.
function M.reference(ref, opts)
  local s = settings(opts)
  local st = { ref = ref, s = s, outs = {} }
  for k = 1, s.samples do
    local outs = run.run(ref, s.inputs, run_opts(s, k, s.precision))
    local arrays = {}
    for name, t in pairs(outs) do arrays[name] = t:array() end
    st.outs[k] = arrays
  end
  return st
end

local function accumulate(acc, x, y)
  for i = 1, #x do
    local d = x[i] - y[i]
    acc.s, acc.e = acc.s + x[i] * x[i], acc.e + d * d
    if math.abs(d) > acc.max then acc.max = math.abs(d) end
  end
end

local function snr(acc)
  if acc.e == 0 then return math.huge end
  if acc.s == 0 then return -math.huge end
  return 10 * math.log(acc.s / acc.e, 10)
end

local function summarise(st, acc, names)
  local res = { samples = st.s.samples, seed = st.s.seed, given_inputs = st.s.inputs ~= nil, precision = st.s.precision,
                precision_model = st.s.precision_model, outputs = {} }
  for _, k in ipairs(names) do
    local a = acc[k]
    local r = { name = k, missing = a.missing }
    if not a.missing then
      r.snr_db, r.max_abs_err = snr(a), a.max
      if #a.top1 > 0 then
        local t = 0
        for _, v in ipairs(a.top1) do t = t + v end
        r.top1_agreement = t / #a.top1
      end
      if not res.min_snr_db or r.snr_db < res.min_snr_db then res.min_snr_db = r.snr_db end
    end
    res.outputs[#res.outputs + 1] = r
  end
  return res
end

-- Run m on the reference's inputs and compare its outputs with the reference's.
function M.against(st, m)
  M.same_inputs(st.ref, m, st.s.fn)
  local acc, names = {}, {}
  for k = 1, st.s.samples do
    local outs = run.run(m, st.s.inputs, run_opts(st.s, k, st.s.precision_model))
    for name, x in pairs(st.outs[k]) do
      if not acc[name] then
        acc[name] = { s = 0, e = 0, max = 0, top1 = {} }
        names[#names + 1] = name
      end
      local y = outs[name] and outs[name]:array()
      if not y then acc[name].missing = true
      elseif #y ~= #x then
        error(string.format("output '%s' has %d values in %s but %d in %s", name, #x, st.ref.path or "the reference", #y, m.path or "the model"), 0)
      else
        accumulate(acc[name], x, y)
        local c = run.compare({ [name] = x }, { [name] = y })[1]
        if c.top1 then acc[name].top1[#acc[name].top1 + 1] = c.top1 end
      end
    end
  end
  table.sort(names)
  return summarise(st, acc, names)
end

-- M.against for the model at path (opened and closed here).
function M.check_file(st, path)
  local m, err = require("mlsh").try_load(path)
  if not m then error(err, 0) end
  local ok, res = pcall(M.against, st, m)
  m:close()
  if not ok then error(res, 0) end
  return res
end

-- The Lua API of `compress --check-outputs`: compress m into path with policy (mlsh.compress.save)
-- and return its report with report.outputs_check = the result (check_opts as M.compare's opts).
function M.save(m, path, policy, check_opts, save_opts)
  local st = M.reference(m, check_opts)
  local report = require("mlsh.compress").save(m, path, policy, save_opts)
  report.outputs_check = M.check_file(st, path)
  return report
end

function M.compare(ref, m, opts)
  M.same_inputs(ref, m, opts and opts.fn)
  return M.against(M.reference(ref, opts), m)
end

local function num(v, null)
  if v == nil or v ~= v or v == math.huge or v == -math.huge then return null end
  return v
end

-- For playbooks: the model (ctx.model) against ctx.original, run once per context and opts (two
-- random samples, seed 0, unless opts say otherwise). nil without an original; {error = msg} when
-- a model cannot run (an op the interpreter lacks, differing inputs).
function M.context_compare(ctx, opts)
  if not ctx.original or not ctx.model then return nil end
  opts = opts or {}
  local key = string.format("compress_check:%s:%s", opts.precision or "model", opts.precision_model or opts.precision or "model")
  return ctx:cached(key, function()
    local o = { random = 0, samples = 2 }
    for k, v in pairs(opts) do o[k] = v end
    local ok, res = pcall(M.compare, ctx.original, ctx.model, o)
    if not ok then return { error = tostring(res) } end
    return res
  end)
end

-- One line of evidence: "output SNR vs --original: logits 17.2 dB (max|err| 0.0714, top-1 100%)
-- over 2 random samples".
function M.evidence(res, what)
  if res.error then return "output SNR vs --original not measured: " .. res.error end
  local parts = {}
  for _, r in ipairs(res.outputs) do
    if r.missing then parts[#parts + 1] = r.name .. " missing"
    else
      parts[#parts + 1] = string.format("%s %s dB (max|err| %.4g%s)", r.name, M.fmt_db(r.snr_db), r.max_abs_err,
        r.top1_agreement and string.format(", top-1 %.0f%%", 100 * r.top1_agreement) or "")
    end
  end
  return string.format("output SNR vs --original%s: %s over %d %s sample%s", what and (" " .. what) or "", table.concat(parts, ", "),
    res.samples, res.given_inputs and "given" or "random", res.samples == 1 and "" or "s")
end

-- Whether every output agrees with the original's at db or better (and top-1 everywhere).
function M.matches(res, db)
  if not res or res.error or not res.min_snr_db or res.min_snr_db < db then return false end
  for _, r in ipairs(res.outputs) do
    if r.missing or (r.top1_agreement and r.top1_agreement < 1) then return false end
  end
  return true
end

-- The JSON shape (`compress --json`'s "outputs_check", the sweep's rows): infinities are null.
function M.json(res, null_value)
  local json = require "mlsh.json"
  local null = null_value or json.null
  local outs = {}
  for i, r in ipairs(res.outputs) do
    outs[i] = { name = r.name, snr_db = num(r.snr_db, null), max_abs_err = num(r.max_abs_err, null),
                top1_agreement = num(r.top1_agreement, null), missing = r.missing or false }
  end
  return { samples = res.samples, seed = num(res.seed, null), inputs = res.given_inputs and "given" or "random",
           precision = res.precision, outputs = json.array(outs), min_snr_db = num(res.min_snr_db, null) }
end

function M.fmt_db(v)
  if v == nil then return "-" end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  return string.format("%.2f", v)
end

function M.text(res, weight_snr_db)
  local lines = { string.format("outputs vs the original (%s, %d sample%s, precision %s):",
    res.given_inputs and "given inputs" or ("random inputs, seed " .. res.seed), res.samples, res.samples == 1 and "" or "s",
    res.precision) }
  for _, r in ipairs(res.outputs) do
    if r.missing then lines[#lines + 1] = string.format("  %s: missing from the compressed model", r.name)
    else
      lines[#lines + 1] = string.format("  %-24s output SNR %s dB  max|err| %.4g%s", r.name, M.fmt_db(r.snr_db), r.max_abs_err,
        r.top1_agreement and string.format("  top-1 agreement %.1f%%", 100 * r.top1_agreement) or "")
    end
  end
  lines[#lines + 1] = string.format("output SNR %s dB (worst output) next to weight SNR %s dB", M.fmt_db(res.min_snr_db), M.fmt_db(weight_snr_db))
  return table.concat(lines, "\n")
end

-- cmd/compress's flags: --check-outputs [--random SEED] [--samples N] [--input NAME=FILE]...; each
-- handler is function(st, flag) over that command's parser state (st.o the options, st:int/value).
function M.add_flags(options)
  local function check(st)
    st.o.check = st.o.check or { inputs = {} }
    return st.o.check
  end
  options["--check-outputs"] = function(st) check(st) end
  options["--random"] = function(st, a) check(st).random = st:int(a) end
  options["--samples"] = function(st, a) check(st).samples = st:int(a) end
  options["--input"] = function(st, a)
    local k, v = st:value(a):match("^([^=]+)=(.+)$")
    if not k then error("--input takes NAME=FILE", 0) end
    check(st).inputs[k] = v
  end
end

return M
