-- mlsh.compress.decompress — undoing compression (constexpr chains back to dense consts, through
-- mlsh.model.constexpr), advice on a compressed weight, and comparing a compressed model with its
-- original weight by weight.
local core = require "mlsh.core"
local weights = require "mlsh.model.weights"
local constexpr = require "mlsh.model.constexpr"
local progress = require "mlsh.compress.progress"
local mil = require "mlsh.builder.mil"
local spec_edit = require "mlsh.compress.spec_edit"

local M = {}
local K = core.compress
local NEW_FILE = spec_edit.NEW_FILE
local rename_refs, block_of, sequence_blobs = spec_edit.rename_refs, spec_edit.block_of, spec_edit.sequence_blobs
local function usage_error(msg) error({ usage = true, msg = msg }, 0) end

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

-- The chain and the consts only it reads go: their indexes into `remove`.
local function mark_chain(chain, users, remove)
  local chain_set = {}
  for _, c in ipairs(chain) do chain_set[c] = true end
  for _, c in ipairs(chain) do
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
end

-- The constexpr weights of an inventory by function.
local function by_function(inv)
  local by_fn = {}
  for _, e in ipairs(inv) do
    if e.constexpr_op then
      by_fn[e["function"]] = by_fn[e["function"]] or {}
      table.insert(by_fn[e["function"]], e)
    end
  end
  return by_fn
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
  local by_fn = by_function(inv)
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
        mark_chain(e.chain, users, remove) -- the const takes the final op's place
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
