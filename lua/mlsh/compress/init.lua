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
-- run options: threads, progress (function(i, n, name) or a mlsh.compress.progress bar), quiet.
-- Errors: "compress: ..." strings for bad settings; {usage = true, msg = ...} tables (raised) when
-- the model cannot take them (mode needs iOS18, not an ML program); callers map both to exit 2.
local core = require "mlsh.core"
local types = require "mlsh.types"
local writer = require "mlsh.model.writer"
local weights = require "mlsh.model.weights"
local constexpr = require "mlsh.model.constexpr"
local config = require "mlsh.compress.config"
local select = require "mlsh.compress.select"
local target = require "mlsh.compress.target"
local emit = require "mlsh.compress.emit"
local progress = require "mlsh.compress.progress"
local mil = require "mlsh.builder.mil"

local K = core.compress
local M = {}

for _, k in ipairs({ "palettize", "quantize", "prune", "prune_palettize", "prune_quantize", "metrics", "pack",
                     "unpack", "randn", "threads", "clock" }) do
  M[k] = K[k]
end
M.config, M.select, M.target, M.emit, M.progress = config, select, target, emit, progress

-- Where the blobs of a result spec live until writer.save lays them out: one virtual file whose
-- offsets are the order blobs appear in the program (op order, as coremltools writes them).
M.SEQ_FILE = "@mlsh/compress/weights"
local NEW_FILE = "@mlsh/compress/new"

local RUN_KEYS = { threads = true, progress = true, quiet = true }

local function usage_error(msg) error({ usage = true, msg = msg }, 0) end

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

-- Rename references to `renames[old] = new` in op inputs and block outputs.
local function rename_refs(block, renames)
  local outs, changed = block.outputs, false
  for i, o in ipairs(outs) do
    if renames[o] then outs[i], changed = renames[o], true end
  end
  if changed then block.outputs = outs end
  for _, op in ipairs(block.operations) do
    for _, e in ipairs(op.inputs) do
      for _, b in ipairs(e.value and e.value.arguments or {}) do
        if b:which("name") == "name" and renames[b.name] then b.name = renames[b.name] end
      end
    end
    for _, nb in ipairs(op.blocks) do rename_refs(nb, renames) end
  end
end

-- The function's block message in a spec copy (the one its opset names, else the first).
local function block_of(fe)
  local fn = fe.value
  local chosen
  for _, be in ipairs(fn.block_specializations) do
    if be.key == fn.opset then chosen = be end
  end
  return chosen or fn.block_specializations[1]
end

-- Re-point every blob of the program to SEQ_FILE in program order; returns read_blob. `source`
-- reads the blobs already there: a model, or a read_blob function (e.g. a builder's).
local function sequence_blobs(spec, source, new_blobs)
  local model_read = type(source) == "function" and source or (source and writer.model_reader(source))
  local seq, by_key = {}, {}
  if spec:has("mlProgram") then
    writer.each_value(spec.mlProgram, function(v)
      if not v:has("blobFileValue") then return end
      local bf = v.blobFileValue
      local key = bf.fileName .. "@" .. bf.offset
      local k = by_key[key]
      if not k then
        k = #seq + 1
        seq[k] = { file = bf.fileName, offset = bf.offset, value = v:copy() }
        by_key[key] = k
      end
      bf.fileName, bf.offset = M.SEQ_FILE, k
    end)
  end
  return function(file, offset, value)
    if file ~= M.SEQ_FILE then
      if not model_read then error("no blob " .. file .. "@" .. offset, 0) end
      return model_read(file, offset, value)
    end
    local e = seq[offset]
    if not e then error("no blob at " .. tostring(offset), 0) end
    if e.file == NEW_FILE then
      local b = new_blobs[e.offset]
      return b.dtype, b.bytes, b.n
    end
    if not model_read then error("no blob " .. e.file .. "@" .. e.offset, 0) end
    return model_read(e.file, e.offset, e.value)
  end
end
M.sequence_blobs = sequence_blobs

local function metrics_of(orig, recon, wd, nbytes)
  local mt = K.metrics(orig, recon, { weight_dtype = wd, nbytes = nbytes })
  return mt
end

-- Compress model m. Returns the new spec (a Message), read_blob for writer.save, and a report:
-- {spec_before, spec_after, notes, weights = {row...}, totals}. Row: {name, op, function, shape,
-- count, dtype, status = "compressed"|"skipped"|"excluded"|"ineligible", reason, setting, source,
-- kind, form, output, op_types, bytes_before, bytes_after, snr_db, psnr_db, cosine, max_abs_err,
-- sparsity, nbits}.
function M.model(m, opts)
  local pfields, run = split_opts(opts)
  local policy = config.policy(pfields)
  local plan = target.plan(m, policy)
  local inv = m:inventory({ threshold = policy.weight_threshold })
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

  -- run the kernels and build the replacement ops
  local out = m.spec:copy()
  out.specificationVersion = plan.spec_after
  local new_blobs, by_content = {}, {}
  local sink = {
    -- identical new blobs are stored once, as coremltools stores them (e.g. the all-zero
    -- zero points of two int8 weights of the same width)
    add = function(dtype, bytes, n)
      local key = dtype .. ":" .. n .. ":" .. bytes
      local k = by_content[key]
      if not k then
        new_blobs[#new_blobs + 1] = { dtype = dtype, bytes = bytes, n = n }
        k = #new_blobs
        by_content[key] = k
      end
      return NEW_FILE, k
    end,
  }
  local bar = run.progress
  if bar == nil then bar = progress.new{ total = #jobs, quiet = run.quiet } end
  local replace = {} -- [function][op name] = {ops, out, old}
  for i, job in ipairs(jobs) do
    local e, s, row = job.e, job.s, job.row
    if type(bar) == "function" then bar(i - 1, #jobs, e.name) elseif bar then bar:update(i - 1, e.name) end
    local fplan = plan.functions[e["function"]]
    local form = fplan.form
    local wd = e.dtype == "fp16" and "fp16" or "fp32"
    local values = e:values()
    local ok, r, kind = pcall(M.tensor, values, s, { weight_dtype = wd, axis = job.axis, input_axis = job.in_axis,
                                                      threads = run.threads })
    if ok and kind == "prune" and s.prune.mode == "threshold" and r.sparsity < 0.5 then
      ok, r = false, string.format("only %.1f%% of it is below the threshold (coremltools needs 50%%)", r.sparsity * 100)
    end
    if not ok then
      row.status, row.reason = "skipped", tostring(r):gsub("^compress%.[%w_]+: ", "")
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
      -- stored bytes of what was written for this weight
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
      local mt = metrics_of(values, r.reconstructed, wd, bytes > 0 and bytes or nil)
      local chain_types = {}
      for k, op in ipairs(ops) do chain_types[k] = op.type end
      row.status, row.kind, row.form, row.output = "compressed", kind, form >= 9 and "iOS18" or "iOS16", out_name
      row.op_types, row.bytes_after = chain_types, bytes
      row.snr_db, row.psnr_db, row.cosine, row.max_abs_err = mt.snr_db, mt.psnr_db, mt.cosine, mt.max_abs_err
      row.mse, row.sum_sq = mt.mse, values:stats().sum_sq
      row.sparsity = r.sparsity
      row.nbits = r.nbits
      row.exact = r.exact
      replace[e["function"]] = replace[e["function"]] or {}
      replace[e["function"]][e.op] = { ops = ops, out = out_name, old = e.name }
    end
    if type(bar) == "function" then bar(i, #jobs, e.name) elseif bar then bar:update(i, e.name) end
  end
  if bar and type(bar) ~= "function" then bar:done() end

  -- splice the new ops in place of the consts, rename the uses, relabel opsets
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

  local read_blob = sequence_blobs(out, m, new_blobs)

  -- totals
  local t = { weights = #rows, compressed = 0, bytes_before = 0, bytes_after = 0, signal = 0, noise = 0 }
  for _, e in ipairs(inv) do t.bytes_before = t.bytes_before + (e.bytes or 0) end
  t.bytes_after = t.bytes_before
  for _, row in ipairs(rows) do
    if row.status == "compressed" then
      t.compressed = t.compressed + 1
      t.bytes_after = t.bytes_after - row.bytes_before + row.bytes_after
      t.signal = t.signal + row.sum_sq
      t.noise = t.noise + row.mse * row.count
    end
  end
  t.ratio = t.bytes_after > 0 and t.bytes_before / t.bytes_after or nil
  t.snr_db = t.noise > 0 and 10 * math.log(t.signal / t.noise, 10) or (t.compressed > 0 and math.huge or nil)
  local report = { spec_before = plan.spec_before, spec_after = plan.spec_after, notes = plan.notes, weights = rows,
                   totals = t, policy = policy }
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

-- ---- decompression ---------------------------------------------------------------------------------------

M.SUFFIXES = { "_palettized_pcs", "_palettized", "_quantized", "_sparsified" }

-- The const name a compressed output came from (coremltools' naming), or nil.
function M.original_name(name)
  for _, suf in ipairs(M.SUFFIXES) do
    if name:sub(-#suf) == suf and #name > #suf then return name:sub(1, -#suf - 1) end
  end
  return nil
end

local function const_op(ctx, name, dtype, shape, data)
  local o = core.proto.new("CoreML.Specification.MILSpec.Operation")
  o.type = "const"
  local nv = o:add("outputs")
  nv.name = name
  mil.tensor_type(nv:mutable("type"), dtype, shape)
  local a = o:add("attributes")
  a.key = "name"
  mil.string_value(a:mutable("value"), name)
  local val = o:add("attributes")
  val.key = "val"
  local n = #data
  if mil.use_weight_file(dtype, n, ctx.spec) then
    local file, offset = ctx.sink.add(dtype, data:encode(dtype), n)
    mil.blob(val:mutable("value"), dtype, shape, file, offset)
  else
    mil.immediate(val:mutable("value"), dtype, shape, data)
  end
  return o
end

-- Replace every constexpr chain of m by a const holding its dense values (named as the const it
-- was made from when that name is free: <w>_palettized -> <w>). Returns spec, read_blob, report
-- {weights = {{name, restored, kind, count, bytes_before, bytes_after}}, spec}.
function M.decompress(m, opts)
  opts = opts or {}
  if m.model_type ~= "mlProgram" then
    usage_error(string.format("decompress works on ML programs; %s is a %s model (its weights already read as dense values)",
      m.path or "the model", tostring(m.model_type)))
  end
  local inv = m:inventory()
  local out = m.spec:copy()
  local new_blobs, rows = {}, {}
  local ctx = { spec = m.spec_version, sink = { add = function(dtype, bytes, n)
    new_blobs[#new_blobs + 1] = { dtype = dtype, bytes = bytes, n = n }
    return NEW_FILE, #new_blobs
  end } }
  local by_fn = {}
  for _, e in ipairs(inv) do
    if e.constexpr_op then
      by_fn[e["function"]] = by_fn[e["function"]] or {}
      table.insert(by_fn[e["function"]], e)
    end
  end
  local bar = opts.progress
  local total, done = 0, 0
  for _, list in pairs(by_fn) do total = total + #list end
  if bar == nil then bar = progress.new{ total = total, quiet = opts.quiet } end
  for _, fe in ipairs(out.mlProgram.functions) do
    local list = by_fn[fe.key]
    local be = block_of(fe)
    if list and be then
      local fn = m:find_function(fe.key)
      local users = weights.users_of(fn)
      local used = {}
      for _, op in ipairs(fn.all_ops) do
        for _, o in ipairs(op.outputs) do used[o.name] = true end
      end
      local remove, insert_at, renames = {}, {}, {}
      for _, e in ipairs(list) do
        done = done + 1
        if type(bar) == "function" then bar(done, total, e.name) elseif bar then bar:update(done, e.name) end
        local nested = false
        for _, c in ipairs(e.chain) do if (c.depth or 0) > 0 then nested = true end end
        if nested then
          rows[#rows + 1] = { name = e.name, restored = e.name, kind = e.compression and e.compression.kind,
                              skipped = "inside a nested block (not supported)" }
          goto continue
        end
        local dense = e:values()
        local name = e.name
        local orig = M.original_name(name)
        if orig and not used[orig] then
          renames[name] = orig
          name = orig
        end
        -- the chain and the consts only it reads go; the const takes the final op's place
        local chain_set = {}
        for _, c in ipairs(e.chain) do chain_set[c] = true end
        for _, c in ipairs(e.chain) do
          remove[c.index] = true
          for _, p in ipairs(constexpr.producers_of(c)) do
            if p.op.type == "const" and p.op.depth == 0 then
              local only = true
              for _, u in ipairs(users[p.op.outputs[1].name] or {}) do
                if not chain_set[u.op_ref] then only = false end
              end
              if only then remove[p.op.index] = true end
            end
          end
        end
        insert_at[e.constexpr_op.index] = const_op(ctx, name, e.dtype, e.shape, dense)
        rows[#rows + 1] = { name = e.name, restored = name, kind = e.compression and e.compression.kind, count = e.count,
                            dtype = e.dtype, bytes_before = e.bytes, bytes_after = weights.nbytes(e.dtype, e.count) }
        ::continue::
      end
      local ops, keep = be.value.operations, {}
      for i, op in ipairs(ops) do
        if insert_at[i] then keep[#keep + 1] = insert_at[i]
        elseif not remove[i] then keep[#keep + 1] = op end
      end
      be.value.operations = keep
      rename_refs(be.value, renames)
    end
  end
  if bar and type(bar) ~= "function" then bar:done() end
  local read_blob = sequence_blobs(out, m, new_blobs)
  return out, read_blob, { weights = rows, spec = m.spec_version }
end

-- ---- comparison -----------------------------------------------------------------------------------------

M.DEFAULT_MIN_SNR = 30

local NEXT_NBITS = { [1] = 2, [2] = 3, [3] = 4, [4] = 6, [6] = 8 }

-- The playbook for a weight under the SNR floor: what to change, most effective first.
function M.advice(d, shape)
  local out = {}
  if not d then return out end
  local function pal(p)
    if p.nbits and NEXT_NBITS[p.nbits] then out[#out + 1] = string.format("more bits: --palettize %d", NEXT_NBITS[p.nbits]) end
    if p.granularity == "per_tensor" then
      out[#out + 1] = "grouped channels: --granularity per-grouped-channel --group-size 16 (iOS18)"
    elseif p.group_size and p.group_size > 4 then
      out[#out + 1] = string.format("smaller groups: --group-size %d", p.group_size // 2)
    end
    if not p.per_channel_scale then out[#out + 1] = "a per-channel scale (iOS18; per_channel_scale = true in a config)" end
  end
  local function quant(q)
    if q.dtype == "int4" or q.dtype == "uint4" then out[#out + 1] = "more bits: --quantize int8" end
    if q.granularity == "per_tensor" then out[#out + 1] = "per-channel scales: --per-channel" end
    if q.granularity == "per_channel" and (q.dtype == "int4" or q.dtype == "uint4") then
      -- a block size that splits the input dimension (a block as long as it is per-channel)
      local din = shape and shape[2]
      local pick = 32
      for _, b in ipairs({ 64, 32, 16, 8 }) do
        if din and din % b == 0 and b < din then pick = b break end
      end
      out[#out + 1] = string.format("per-block scales: --per-block %d (iOS18)", pick)
    elseif q.granularity == "per_block" and q.block_size and q.block_size > 8 then
      out[#out + 1] = string.format("smaller blocks: --per-block %d", q.block_size // 2)
    end
    if q.symmetric and q.dtype and q.dtype:match("^u") then out[#out + 1] = "affine (non-symmetric) ranges: drop --symmetric" end
  end
  local function sparse(s)
    if s.n_m then
      out[#out + 1] = string.format("lower sparsity: fewer zeros per group than %d:%d (e.g. --n-m %d:%d)", s.n_m.n, s.n_m.m,
        math.max(1, s.n_m.n // 2), s.n_m.m)
    elseif s.sparsity then
      out[#out + 1] = string.format("lower sparsity: --prune %.2g", math.max(0.05, math.floor((s.sparsity - 0.25) * 20 + 0.5) / 20))
    end
  end
  if d.kind == "palettized" then pal(d)
  elseif d.kind == "quantized" then quant(d)
  elseif d.kind == "sparse" then sparse(d)
  elseif d.kind == "joint" then
    sparse(d)
    local inner = d.stages and d.stages[2]
    if inner and inner.kind == "palettized" then pal(inner) elseif inner then quant(inner) end
  end
  return out
end

-- A short text for a compression description ("palettized 4-bit per-tensor", ...).
function M.describe_compression(d)
  if not d then return "none" end
  local function one(x)
    if x.kind == "palettized" then
      return string.format("palettized %s-bit %s%s%s", tostring(x.nbits), (x.granularity or ""):gsub("_", "-"),
        x.group_size and x.granularity == "per_grouped_channel" and (" " .. x.group_size) or "",
        x.per_channel_scale and " +scale" or "")
    elseif x.kind == "quantized" then
      return string.format("%s %s %s%s", tostring(x.dtype), x.symmetric == false and "affine" or (x.symmetric and "sym" or ""),
        (x.granularity or ""):gsub("_", "-"), x.block_size and x.granularity == "per_block" and (" " .. x.block_size) or "")
    elseif x.kind == "sparse" then
      local s = x.sparsity and string.format("sparse %.0f%%", x.sparsity * 100) or "sparse"
      if x.n_m then s = s .. string.format(" %d:%d", x.n_m.n, x.n_m.m) end
      return s
    end
    return tostring(x.kind)
  end
  if d.kind == "joint" then
    local parts = {}
    for i, st in ipairs(d.stages or {}) do parts[i] = one(st) end
    return table.concat(parts, " + ")
  end
  return one(d)
end

local function consumer_key(fn_name, e)
  local c = e.consumers and e.consumers[1]
  return c and (fn_name .. "\0" .. c.op .. "\0" .. c.param) or nil
end

-- Per-weight accuracy of `compressed` against `original`: rows {name, original, function, kind,
-- compression, snr_db, psnr_db, cosine, max_abs_err, count, bytes_before, bytes_after, below,
-- advice} sorted worst first (identical weights last, snr_db = math.huge), plus {unmatched = {...}}.
function M.compare(original, compressed, opts)
  opts = opts or {}
  local min_snr = opts.min_snr or M.DEFAULT_MIN_SNR
  local by_name, by_consumer = {}, {}
  for _, e in ipairs(original:inventory()) do
    local fnk = e["function"] or ""
    by_name[fnk .. "\0" .. e.name] = e
    if e.op then by_name[fnk .. "\0" .. e.op] = by_name[fnk .. "\0" .. e.op] or e end
    local ck = consumer_key(fnk, e)
    if ck then by_consumer[ck] = e end
  end
  local rows, unmatched = {}, {}
  for _, e in ipairs(compressed:inventory()) do
    local fnk = e["function"] or ""
    local o = by_name[fnk .. "\0" .. e.name]
    local base = M.original_name(e.name)
    if not o and base then o = by_name[fnk .. "\0" .. base] end
    if not o then
      local ck = consumer_key(fnk, e)
      o = ck and by_consumer[ck]
    end
    if not o then
      unmatched[#unmatched + 1] = { name = e.name, why = "no weight of that name (or consumer) in the original" }
    elseif o.count ~= e.count then
      unmatched[#unmatched + 1] = { name = e.name, why = string.format("%d elements here, %d in the original", e.count or 0, o.count or 0) }
    else
      local ok, a, b = pcall(function() return o:values(), e:values() end)
      if not ok then
        unmatched[#unmatched + 1] = { name = e.name, why = tostring(a) }
      else
        local mt = K.metrics(a, b)
        local row = { name = e.name, original = o.name, ["function"] = e["function"], count = e.count,
                      kind = e.compression and e.compression.kind or "none", compression = e.compression,
                      summary = M.describe_compression(e.compression), snr_db = mt.snr_db, psnr_db = mt.psnr_db,
                      cosine = mt.cosine, max_abs_err = mt.max_abs_err, bytes_before = o.bytes, bytes_after = e.bytes,
                      sparsity = mt.sparsity }
        row.below = mt.snr_db < min_snr
        if row.below then row.advice = M.advice(e.compression, e.shape) end
        rows[#rows + 1] = row
      end
    end
  end
  table.sort(rows, function(x, y)
    if x.snr_db ~= y.snr_db then return x.snr_db < y.snr_db end
    return x.name < y.name
  end)
  return rows, { unmatched = unmatched, min_snr = min_snr }
end

return M
