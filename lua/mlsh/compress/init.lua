-- mlsh.compress — compression of whole models with the C kernels (require("mlsh.core").compress),
-- written the way coremltools.optimize.coreml writes them, plus decompression and comparison.
--
--   local compress = require "mlsh.compress"
--   local spec, read_blob, report = compress.model(m, {palettize = {nbits = 4}})   -- policy + run options
--   require("mlsh.model.writer").save(spec, read_blob, "out.mlpackage", {source = m.path})
--   compress.save(m, "out.mlpackage", policy)         -- the same in one call; returns report
--   local spec, read_blob, report = compress.decompress(m)   -- constexpr chains -> dense consts
--   local rows = compress.compare(original, compressed, {min_snr = 30})   -- SNR per weight, worst first
--   compress.palettize(a, opts) / quantize / prune / prune_palettize / prune_quantize / metrics /
--   pack / unpack   -- the per-tensor kernels (see core/lua_compress.c)
--   compress.tensor(a, setting, {shape, weight_dtype, axis, input_axis, threads}) -> result, kind
--
-- A policy (mlsh.compress.config) holds the global setting and per-op-type / per-op-name overrides;
-- run options: threads, progress (function(i, n, name) or a mlsh.compress.progress bar), quiet,
-- metrics (false: no SNR / error fields in the rows and no totals.snr_db; outputs unchanged).
-- Errors: "compress: ..." strings for bad settings; {usage = true, msg = ...} tables (raised) when
-- the model cannot take them (mode needs iOS18, not an ML program); callers map both to exit 2.
local core = require "mlsh.core"
-- the Lua heap this command grows (modules, the spec, result strings) in 2 MiB pages from here on
core.compress.reserve(128 << 20)
local types = require "mlsh.types"
local writer = require "mlsh.model.writer"
local weights = require "mlsh.model.weights"
local config = require "mlsh.compress.config"
local select = require "mlsh.compress.select"
local target = require "mlsh.compress.target"
local emit = require "mlsh.compress.emit"
local progress = require "mlsh.compress.progress"

local K = core.compress
local M = {}

for _, k in ipairs({ "palettize", "quantize", "prune", "prune_palettize", "prune_quantize", "metrics", "pack",
                     "unpack", "randn", "threads", "clock", "prefault" }) do
  M[k] = K[k]
end
M.config, M.select, M.target, M.emit, M.progress = config, select, target, emit, progress

-- Where the blobs of a result spec live until writer.save lays them out: one virtual file whose
-- offsets are the order blobs appear in the program (op order, as coremltools writes them).
local spec_edit = require "mlsh.compress.spec_edit"
M.SEQ_FILE = spec_edit.SEQ_FILE
local NEW_FILE = spec_edit.NEW_FILE
local rename_refs, block_of, sequence_blobs = spec_edit.rename_refs, spec_edit.block_of, spec_edit.sequence_blobs

local RUN_KEYS = { threads = true, progress = true, quiet = true, metrics = true }
local BIG_WEIGHT = 1 << 20 -- weights from which a full GC after the job pays for itself


-- ---- one tensor ---------------------------------------------------------------------------------------

local function pal_opts(p, a)
  local o = { mode = p.mode, nbits = p.nbits, axis = a.axis or 0, per_channel_scale = p.per_channel_scale or nil,
              weight_dtype = a.weight_dtype, threads = a.threads, shape = a.shape }
  if p.granularity == "per_grouped_channel" then
    o.granularity, o.group_size = "per_grouped_channel", p.group_size
  end
  return o
end

local function quant_opts(q, a)
  local o = { dtype = q.dtype, symmetric = q.symmetric, granularity = q.granularity, weight_dtype = a.weight_dtype,
              threads = a.threads, shape = a.shape }
  if q.granularity ~= "per_tensor" then o.axis = a.axis or 0 end
  if q.granularity == "per_block" then o.block_size, o.input_axis = q.block_size, a.input_axis end
  return o
end

local function prune_opts(p, a)
  local o = { weight_dtype = a.weight_dtype, threads = a.threads, shape = a.shape }
  if p.mode == "threshold" then
    o.mode, o.threshold = "threshold", p.threshold
  else
    o.sparsity, o.n_m, o.block_size, o.dim = p.sparsity, p.n_m, p.block_size, p.dim
  end
  return o
end

-- Run the kernel a setting asks for on Array a. Returns the kernel result and its kind.
function M.tensor(a, setting, args)
  args = args or {}
  local s = config.setting(setting)
  if s.prune and s.palettize then
    if s.palettize.per_channel_scale then error("compress: per-channel scale cannot be combined with pruning", 0) end
    return K.prune_palettize(a, prune_opts(s.prune, args), pal_opts(s.palettize, { axis = args.axis })), "prune_palettize"
  elseif s.prune and s.quantize then
    local q = quant_opts(s.quantize, { axis = args.axis, input_axis = args.input_axis })
    return K.prune_quantize(a, prune_opts(s.prune, args), q), "prune_quantize"
  elseif s.palettize then
    return K.palettize(a, pal_opts(s.palettize, args)), "palettize"
  elseif s.quantize then
    return K.quantize(a, quant_opts(s.quantize, args)), "quantize"
  end
  return K.prune(a, prune_opts(s.prune, args)), "prune"
end

-- The kernels that read a weight file's fp16 blob in place (no float copy, no reconstruction:
-- the result carries its metrics). nil when the weight or the setting is not one they cover.
local BLOB_KERNELS = {
  palettize = { K.palettize_blob, pal_opts, "palettize" },
  quantize = { K.quantize_blob, quant_opts, "quantize" },
  prune = { K.prune_blob, prune_opts, "prune" },
}
function M.tensor_blob(e, setting, args)
  if e.storage ~= "blob" or e.dtype ~= "fp16" or not e.shape then return nil end
  local s = config.setting(setting)
  local which = (s.palettize and "palettize") or (s.quantize and "quantize") or "prune"
  if s.prune and which ~= "prune" then return nil end -- joint modes: the Array kernels
  local k = BLOB_KERNELS[which]
  local opts = k[2](s[which], { weight_dtype = "fp16", axis = args.axis, input_axis = args.input_axis,
                                threads = args.threads, shape = e.shape })
  opts.metrics = args.metrics
  local r = k[1](e.root, e.file, e.offset, opts)
  if r then return r, k[3] end
end

-- A short text for a setting ("palettize 4-bit kmeans per-tensor", ...).
function M.describe_setting(s)
  if not s then return "none" end
  local parts = {}
  if s.prune then
    local p = s.prune
    if p.mode == "threshold" then parts[#parts + 1] = string.format("prune |w|<=%g", p.threshold)
    elseif p.n_m then parts[#parts + 1] = string.format("prune %d:%d", p.n_m[1], p.n_m[2])
    else parts[#parts + 1] = string.format("prune %g%%%s", p.sparsity * 100, p.block_size and (" block " .. p.block_size) or "") end
  end
  if s.palettize then
    local p = s.palettize
    parts[#parts + 1] = string.format("palettize %s %s%s%s", p.nbits and (p.nbits .. "-bit") or "unique", p.mode,
      p.granularity == "per_grouped_channel" and (" group " .. p.group_size) or "", p.per_channel_scale and " +scale" or "")
  end
  if s.quantize then
    local q = s.quantize
    parts[#parts + 1] = string.format("%s %s%s%s", q.dtype, q.symmetric and "sym" or "affine",
      q.granularity == "per_block" and (" block " .. q.block_size) or "", q.granularity == "per_tensor" and " per-tensor" or "")
  end
  return table.concat(parts, " + ")
end

-- Pre-checks for settings coremltools skips per weight (a warning there, a "skipped" row here).
local function skip_reason(s, e, axis, in_axis)
  local shape = e.shape
  if s.palettize and s.palettize.granularity == "per_grouped_channel" then
    local C = shape[axis + 1]
    if C % s.palettize.group_size ~= 0 then
      return string.format("its %d output channels are not a multiple of the group size %d", C, s.palettize.group_size)
    end
  end
  if s.quantize and s.quantize.granularity == "per_block" then
    local D = in_axis and shape[in_axis + 1]
    if not D then return "no input axis for per-block quantization" end
    if D % s.quantize.block_size ~= 0 then
      return string.format("its input dimension %d is not a multiple of the block size %d", D, s.quantize.block_size)
    end
  end
  if s.prune and (s.prune.block_size or s.prune.n_m) then
    if #shape < 2 or #shape > 5 then return "structured pruning needs a weight of rank 2..5" end
  end
  return nil
end

local function structured_consumer_ok(e)
  for _, u in ipairs(e.consumers or {}) do
    if not ((u.type == "conv" or u.type == "linear") and u.param == "weight") then return false end
  end
  return true
end

-- Why setting s (validated) cannot apply to inventory entry e, or nil; `source` is where the
-- setting came from ("op_name" forces structured pruning on any consumer, as in coremltools).
function M.check_setting(s, e, source)
  local skip = skip_reason(s, e, select.output_axis(e) or 0, select.input_axis(e))
  if not skip and s.prune and (s.prune.block_size or s.prune.n_m) and source ~= "op_name" and not structured_consumer_ok(e) then
    skip = "structured pruning applies to conv/linear weights only (name it in op_name to force)"
  end
  return skip
end

-- ---- the model pass -------------------------------------------------------------------------------------

local function split_opts(opts)
  local policy, run = {}, {}
  for k, v in pairs(opts or {}) do
    if RUN_KEYS[k] then run[k] = v else policy[k] = v end
  end
  return policy, run
end

M.sequence_blobs = sequence_blobs

-- metrics.signal, the original's sum of squares as the SNR sums it, makes the totals' signal
local function metrics_of(orig, recon, wd, nbytes)
  return K.metrics(orig, recon, { weight_dtype = wd, nbytes = nbytes })
end

-- Compress model m. Returns the new spec (a Message), read_blob for writer.save, and a report:
-- {spec_before, spec_after, notes, weights = {row...}, totals}. Row: {name, op, function, shape,
-- count, dtype, status = "compressed"|"skipped"|"excluded"|"ineligible", reason, setting, source,
-- kind, form, output, op_types, bytes_before, bytes_after, snr_db, psnr_db, cosine, max_abs_err,
-- sparsity, nbits}.
-- The rows of the report (one per const or compressed weight) and the jobs: the weights a
-- setting applies to and that can take it.
local function plan_rows(inv, policy)
  local rows, jobs = {}, {}
  for _, e in ipairs(inv) do
    if e.op_type == "const" or e.compression then
      local row = { name = e.name, op = e.op, ["function"] = e["function"], shape = e.shape, count = e.count,
                    dtype = e.dtype, bytes_before = e.bytes, bytes_after = e.bytes }
      rows[#rows + 1] = row
      if e.compression then
        row.status, row.reason, row.kind = "ineligible", "already compressed", e.compression.kind
      else
        local ctypes = select.consumer_types(e)
        local s, source, rerr = config.resolve(policy, e, ctypes)
        if rerr then error("compress: weight " .. e.name .. ": " .. rerr, 0) end
        row.source = source
        local threshold = (s and s.weight_threshold) or policy.weight_threshold
        local why = select.ineligible(e, threshold)
        if why then
          row.status, row.reason = "ineligible", why
        elseif not s then
          row.status, row.reason = "excluded", "no setting applies (" .. source .. ")"
        else
          row.setting = M.describe_setting(s)
          local axis, in_axis = select.output_axis(e), select.input_axis(e)
          local skip = M.check_setting(s, e, source)
          if skip then
            row.status, row.reason = "skipped", skip
          else
            jobs[#jobs + 1] = { e = e, s = s, row = row, axis = axis, in_axis = in_axis }
          end
        end
      end
    end
  end

  return rows, jobs
end

-- Where new blobs go: identical new blobs are stored once, as coremltools stores them (e.g. the
-- all-zero zero points of two int8 weights of the same width). Returns the list and the sink.
local function new_sink()
  local new_blobs, by_shape = {}, {}
  local sink = {
    -- identical new blobs are stored once, as coremltools stores them (e.g. the all-zero
    -- zero points of two int8 weights of the same width); candidates share dtype and count,
    -- so a blob is compared (memcmp) only with those, never hashed or copied into a key
    add = function(dtype, bytes, n)
      local key = dtype .. ":" .. n
      local list = by_shape[key]
      if not list then
        list = {}
        by_shape[key] = list
      end
      for _, k in ipairs(list) do
        if new_blobs[k].bytes == bytes then return NEW_FILE, k end
      end
      new_blobs[#new_blobs + 1] = { dtype = dtype, bytes = bytes, n = n }
      list[#list + 1] = #new_blobs
      return NEW_FILE, #new_blobs
    end,
  }
  return new_blobs, sink
end

-- Bytes stored for the constexpr ops written for one weight.
local function stored_bytes(ops)
  local bytes = 0
  for _, op in ipairs(ops) do
    for _, a in ipairs(op.attributes) do
      if a.key ~= "name" and a.value then bytes = bytes + (weights.value_nbytes(a.value)) end
    end
    for _, inp in ipairs(op.inputs) do
      for _, b in ipairs(inp.value and inp.value.arguments or {}) do
        if b:which("name") == "value" then bytes = bytes + weights.value_nbytes(b.value) end
      end
    end
  end
  return bytes
end

-- Compress one job's weight with the kernels and build its ops; fills job.row. Returns the
-- replacement {ops, out, old} or nil when the weight was skipped.
local function run_job(job, plan, sink, run)
  local e, s, row = job.e, job.s, job.row
  local fplan = plan.functions[e["function"]]
  local form = fplan.form
  local wd = e.dtype == "fp16" and "fp16" or "fp32"
  local targs = { weight_dtype = wd, axis = job.axis, input_axis = job.in_axis, threads = run.threads,
                  metrics = run.metrics }
  local ok, r, kind = pcall(M.tensor_blob, e, s, targs)
  local values
  if not (ok and r) then
    values = e:values()
    ok, r, kind = pcall(M.tensor, values, s, targs)
  end
  -- the weight is read once: its weight-file pages, when it was read through the mapping, need
  -- not stay resident (peak RSS)
  if e.storage == "blob" and (e.count or 0) >= BIG_WEIGHT and (values or (ok and r and r.mapped)) then
    e.root:_blob_drop(e.file, e.offset)
  end
  if ok and kind == "prune" and s.prune.mode == "threshold" and r.sparsity < 0.5 then
    ok, r = false, string.format("only %.1f%% of it is below the threshold (coremltools needs 50%%)", r.sparsity * 100)
  end
  if not ok then
    -- the kernel's message without a source position or the function's name
    row.status, row.reason = "skipped", (tostring(r):gsub("^[^:\n]*:%d+: ", ""):gsub("^compress%.[%w_]+: ", ""))
  else
    -- iOS16 LUTs have 2, 4, 16, 64 or 256 entries: a 3-bit unique LUT is written as 4-bit
    if form < 9 and (kind == "palettize") and r.nbits == 3 then
      local codes = r.codes
      local lut = core.array.new(16)
      for k = 1, 8 do lut[k] = r.lut[k] end
      r = setmetatable({ indices = K.pack(codes, 4), lut = lut, nbits = 4, lut_shape = r.lut_shape,
                         reconstructed = r.reconstructed }, { __index = r })
    end
    local ectx = { sink = sink, spec = plan.spec_after }
    local w = { name = e.op, dtype = e.dtype, shape = e.shape }
    local ops, out_name = emit[kind](ectx, w, r, form)
    local bytes = stored_bytes(ops) -- stored bytes of what was written for this weight
    -- run.metrics == false (a caller that reports none): the rows carry no SNR / error fields
    local mt = r.metrics or (run.metrics ~= false and metrics_of(values, r.reconstructed, wd, bytes > 0 and bytes or nil)) or {}
    local chain_types = {}
    for k, op in ipairs(ops) do chain_types[k] = op.type end
    row.status, row.kind, row.form, row.output = "compressed", kind, form >= 9 and "iOS18" or "iOS16", out_name
    row.op_types, row.bytes_after = chain_types, bytes
    row.snr_db, row.psnr_db, row.cosine, row.max_abs_err = mt.snr_db, mt.psnr_db, mt.cosine, mt.max_abs_err
    row.mse, row.sum_sq = mt.mse, mt.signal
    row.sparsity = r.sparsity
    row.nbits = r.nbits
    row.exact = r.exact
    return { ops = ops, out = out_name, old = e.name }, values ~= nil
  end
  return nil, values ~= nil
end

-- Splice the new ops in place of the consts, rename the uses, relabel opsets.
local function splice(out, plan, replace)
  for _, fe in ipairs(out.mlProgram.functions) do
    local fplan = plan.functions[fe.key]
    local be = block_of(fe)
    if fplan and fplan.relabel then
      local fn = fe.value
      local old = fn.opset
      fn.opset = fplan.relabel
      for _, x in ipairs(fn.block_specializations) do
        if x.key == old then x.key = fplan.relabel end
      end
    end
    local rep = replace[fe.key]
    if rep and be then
      local block = be.value
      local list, renames = {}, {}
      for _, op in ipairs(block.operations) do
        local name
        if op.type == "const" then
          for _, a in ipairs(op.attributes) do
            if a.key == "name" then
              local v = types.value(a.value)
              name = type(v) == "table" and v[1] or v
            end
          end
        end
        local r = name and rep[name]
        if r then
          for _, nop in ipairs(r.ops) do list[#list + 1] = nop end
          renames[r.old] = r.out
        else
          list[#list + 1] = op
        end
      end
      block.operations = list
      rename_refs(block, renames)
    end
  end

end

-- The report's totals over the inventory and the rows.
local function totals(inv, rows)
  local t = { weights = #rows, compressed = 0, bytes_before = 0, bytes_after = 0, signal = 0, noise = 0 }
  for _, e in ipairs(inv) do t.bytes_before = t.bytes_before + (e.bytes or 0) end
  t.bytes_after = t.bytes_before
  for _, row in ipairs(rows) do
    if row.status == "compressed" then
      t.compressed = t.compressed + 1
      t.bytes_after = t.bytes_after - row.bytes_before + row.bytes_after
      if row.sum_sq then
        t.signal = t.signal + row.sum_sq
        t.noise = t.noise + row.mse * row.count
      else t.unmeasured = true end
    end
  end
  t.ratio = t.bytes_after > 0 and t.bytes_before / t.bytes_after or nil
  t.snr_db = t.noise > 0 and 10 * math.log(t.signal / t.noise, 10) or (t.compressed > 0 and math.huge or nil)
  if t.unmeasured then t.snr_db, t.signal, t.noise, t.unmeasured = nil, nil, nil, nil end
  return t
end

function M.model(m, opts)
  local pfields, run = split_opts(opts)
  local policy = config.policy(pfields)
  local plan = target.plan(m, policy)
  local inv = m:inventory({ threshold = policy.weight_threshold })
  local rows, jobs = plan_rows(inv, policy)
  -- run the kernels and build the replacement ops
  local out = m.spec:copy()
  out.specificationVersion = plan.spec_after
  local new_blobs, sink = new_sink()
  local bar = run.progress
  if bar == nil then bar = progress.new{ total = #jobs, quiet = run.quiet } end
  local replace = {} -- [function][op name] = {ops, out, old}
  -- the heap this pass will use (float32 values and reconstruction of a weight, the packed blobs
  -- of all) in 2 MiB pages: costs address space, not memory
  local total = 0
  for _, job in ipairs(jobs) do total = total + (job.e.count or 0) end
  if total >= BIG_WEIGHT then K.reserve(12 * total) end
  for i, job in ipairs(jobs) do
    local e = job.e
    if type(bar) == "function" then bar(i - 1, #jobs, e.name) elseif bar then bar:update(i - 1, e.name) end
    local rep, decoded = run_job(job, plan, sink, run)
    -- free this weight's float32 working copies (its values and the reconstruction, 2 x 4 bytes
    -- a weight) before the next one is decoded: peak memory is one weight's, not the model's
    if decoded and (job.e.count or 0) >= BIG_WEIGHT then collectgarbage() end
    if rep then
      replace[e["function"]] = replace[e["function"]] or {}
      replace[e["function"]][e.op] = rep
    end
    if type(bar) == "function" then bar(i, #jobs, e.name) elseif bar then bar:update(i, e.name) end
  end
  if bar and type(bar) ~= "function" then bar:done() end
  splice(out, plan, replace)
  local read_blob = sequence_blobs(out, m, new_blobs)
  local report = { spec_before = plan.spec_before, spec_after = plan.spec_after, notes = plan.notes, weights = rows,
                   totals = totals(inv, rows), policy = policy }
  return out, read_blob, report
end

-- Compress m and write path (through mlsh.writer: validated, atomic). Returns the report.
function M.save(m, path, opts, save_opts)
  local spec, read_blob, report = M.model(m, opts)
  save_opts = save_opts or {}
  save_opts.source = save_opts.source or m.path
  writer.save(spec, read_blob, path, save_opts)
  return report
end

-- ---- decompression, advice, comparison: mlsh.compress.decompress ------------------------------------------

-- loaded on first use: `mlsh compress` never needs it (start-up cost)
local DECOMPRESS = { SUFFIXES = true, DEFAULT_MIN_SNR = true, original_name = true, decompress = true, advice = true,
                     describe_compression = true, compare = true }
setmetatable(M, { __index = function(t, k)
  if not DECOMPRESS[k] then return nil end
  local decompress = require "mlsh.compress.decompress"
  for name in pairs(DECOMPRESS) do rawset(t, name, decompress[name]) end
  return decompress[k]
end })

return M
