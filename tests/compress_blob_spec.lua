-- compress_blob_spec.lua — the kernels that read a weight file's fp16 blob in place
-- (compress.palettize_blob / quantize_blob / prune_blob): for every setting they cover, the same
-- result as decoding the values and running the Array kernel (codes, tables, masks, kept values
-- byte for byte) and, without a reconstruction array, the same metrics as compress.metrics on
-- that kernel's reconstruction, to the bit; their signal (the sum of squares the SNR divides)
-- equals a plain Lua loop over the values, 64K chunk by chunk; with metrics = false the same
-- result without metrics. Settings they do not cover give nil.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local B = require "mlsh.builder"
local CF = require "compress_fixtures"

local K = core.compress
local dir = CF.tmpdir()

-- An fp16 ML program holding the given consts (each sent to an output), saved as a package.
local function model(path, weights, precision)
  local p = B.program { opset = "iOS18", precision = precision or "fp16" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 4 })
  f:output("y", B.layers.relu(f, x))
  for _, w in ipairs(weights) do
    local a = B.random.normal { seed = w.seed, shape = w.shape, std = w.std }
    if w.edit then w.edit(a) end
    f:output(w.name .. "_out", f:const(w.name, a))
  end
  p:save(path)
  return assert(mlsh.try_load(path))
end

local function blobs(m)
  local out = {}
  for _, e in ipairs(m:inventory({ threshold = 0 })) do
    if e.storage == "blob" then out[(e.name:gsub("_to_fp16$", ""))] = e end
  end
  return out
end

-- 304 x 1000: four whole 64K chunks and a partial one, batches across rows; 48 x 64: one chunk;
-- 576 x 1024: nine chunks (eight in 512-bit lanes, then one) over two of the pass's 512K-element
-- task spans, rows that tile them (per-channel and per-block parameters are then computed per
-- span, inside the pass).
-- The edits put in zeros of both signs, repeated values and exact ties of the quantizer.
local function specials(a)
  for i = 1, #a, 97 do a[i] = 0.0 end
  for i = 2, #a, 101 do a[i] = -0.0 end
  for i = 3, #a, 89 do a[i] = 0.25 end
  for i = 4, #a, 83 do a[i] = -0.015625 end
end
local WEIGHTS = {
  { name = "big", shape = { 304, 1000 }, std = 0.02, seed = 1, edit = specials },
  { name = "wide", shape = { 64, 4096 }, std = 1.5, seed = 2 },
  { name = "small", shape = { 48, 64 }, std = 0.1, seed = 3, edit = specials },
  { name = "rows", shape = { 576, 1024 }, std = 0.05, seed = 4, edit = function(a)
    specials(a)
    for i = 1, 1024 do a[i] = 0.0 end -- an all-zero row: zero range, NaN zero point
  end },
  -- the first 32 of every 2048 elements tiny: the pruner's sample (those runs) misleads its window,
  -- which then misses the ranks (all elements are counted instead)
  { name = "strided", shape = { 256, 512 }, std = 0.05, seed = 8, edit = function(a)
    for i = 1, #a do
      if (i - 1) % 2048 < 32 then a[i] = 1e-4 * (i % 7) end
    end
  end },
  -- over 64K elements, not a whole number of 32-element vectors (the pruner's window pass ends in a tail)
  { name = "tall", shape = { 331, 199 }, std = 0.05, seed = 9, edit = specials },
  -- odd rows: 8-bit codes end in a partial vector; 4-bit per-channel codes share a byte across rows
  { name = "odd", shape = { 50, 75 }, std = 0.3, seed = 6, edit = function(a)
    specials(a)
    local tail = { 0.0, -0.0, 0.25, -0.25, 0.01, -0.01 } -- past the last whole 32: zeros, the threshold
    for k, v in ipairs(tail) do a[#a - #tail + k] = v end
  end },
}
local m = model(dir .. "/blob.mlpackage", WEIGHTS)
local ws = blobs(m)

local function copy(t, extra)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function same_array(a, b, what)
  assert.are.equal(#b, #a, what .. " length")
  for i = 1, #a do
    local x, y = a[i], b[i]
    assert(x == y and (x ~= 0 or 1 / x == 1 / y), what .. "[" .. i .. "]: " .. tostring(x) .. " vs " .. tostring(y))
  end
end

-- sum of squares in element order, skipping NaN: what a:stats().sum_sq promises
local function lua_sum_sq(a)
  local s = 0
  for i = 1, #a do
    local v = a[i]
    if v == v then s = s + v * v end
  end
  return s
end

-- the same sum as the SNR's numerator: each 65536-element chunk in element order, then the chunks
local function lua_chunked_sum_sq(a)
  local s = 0
  for c0 = 1, #a, 65536 do
    local p = 0
    for i = c0, math.min(#a, c0 + 65535) do p = p + a[i] * a[i] end
    s = s + p
  end
  return s
end

local METRIC_KEYS = { "snr_db", "psnr_db", "mse", "max_abs_err", "mean_abs_err", "cosine", "sparsity", "n", "signal" }

-- per-block settings whose block does not divide the weight's input dimension do not apply
local function applies(e, o)
  if o.granularity ~= "per_block" then return true end
  local in_axis = o.input_axis or 1
  return e.shape[in_axis + 1] % o.block_size == 0 and e.shape[(o.axis or 0) + 1] % 1 == 0
end

local function check(kind, e, opts, th)
  local blob_fn, arr_fn = K[kind .. "_blob"], K[kind]
  local o = copy(opts, { weight_dtype = "fp16", threads = th })
  local r = blob_fn(e.root, e.file, e.offset, copy(o, { shape = e.shape }))
  assert.is_table(r, kind .. " on " .. e.name)
  local values = e:values()
  local ref = arr_fn(values, o)
  for _, k in ipairs({ "indices", "data", "mask", "nonzero_bytes", "nbits", "ncodes", "nnz", "sparsity", "threshold",
                       "groups", "dtype", "qmin", "qmax", "nbytes", "exact", "mode", "nonzero_dtype" }) do
    assert(r[k] == ref[k] or (r[k] ~= r[k] and ref[k] ~= ref[k]), kind .. " " .. e.name .. ": field " .. k .. " differs")
  end
  for _, k in ipairs({ "lut", "scale", "zero_point" }) do
    if ref[k] then same_array(r[k], ref[k], kind .. " " .. e.name .. " " .. k) else assert.is_nil(r[k]) end
  end
  -- metrics = false (a quiet run): no metrics, every other field the same
  local q = blob_fn(e.root, e.file, e.offset, copy(o, { shape = e.shape, metrics = false }))
  assert.is_nil(q.metrics)
  for _, k in ipairs({ "indices", "data", "mask", "nonzero_bytes", "nbits", "ncodes", "nnz", "sparsity", "threshold",
                       "nbytes", "n" }) do
    assert(q[k] == r[k] or (q[k] ~= q[k] and r[k] ~= r[k]), kind .. " " .. e.name .. ": field " .. k .. " differs without metrics")
  end
  for _, k in ipairs({ "lut", "scale", "zero_point" }) do
    if r[k] then same_array(q[k], r[k], kind .. " " .. e.name .. " " .. k .. " without metrics") end
  end
  local mt = K.metrics(values, ref.reconstructed, { signal = true, threads = th })
  for _, k in ipairs(METRIC_KEYS) do
    assert(r.metrics[k] == mt[k], kind .. " " .. e.name .. ": metric " .. k .. " " .. tostring(r.metrics[k]) .. " vs " .. tostring(mt[k]))
  end
  assert.are.equal(lua_chunked_sum_sq(values), r.metrics.signal)
  assert.is_nil(r.metrics.sum_sq)
  assert.are.equal(#values, r.n)
  return r, ref
end

describe("compress kernels over an fp16 blob", function()
  local PAL = { { nbits = 4 }, { nbits = 2 }, { nbits = 8 }, { nbits = 3, mode = "uniform" }, { nbits = 6 } }
  local QUANT = {
    { dtype = "int8" }, { dtype = "uint8", symmetric = false }, { dtype = "int8", granularity = "per_tensor" },
    { dtype = "int4", granularity = "per_block", block_size = 32 },
    { dtype = "int4", granularity = "per_block", block_size = 40 },
    { dtype = "uint4", granularity = "per_block", block_size = 16, symmetric = false },
    { dtype = "uint4", granularity = "per_block", block_size = 32 }, { dtype = "uint8" },
    { dtype = "int4", granularity = "per_block", block_size = 8, axis = 1, input_axis = 0 },
    { dtype = "int4" }, { dtype = "uint4", symmetric = false, granularity = "per_tensor" },
  }
  local PRUNE = { { sparsity = 0.5 }, { sparsity = 0.9 }, { sparsity = 0 }, { sparsity = 1 },
                  { mode = "threshold", threshold = 0.01 } }

  for _, th in ipairs({ 1, 2 }) do
    it("palettize: the same LUT, packed codes and metrics as the Array kernel (" .. th .. " threads)", function()
      for _, e in pairs(ws) do
        for _, o in ipairs(PAL) do check("palettize", e, o, th) end
      end
    end)
    it("quantize: the same codes, scales, zero points and metrics (" .. th .. " threads)", function()
      for _, e in pairs(ws) do
        for _, o in ipairs(QUANT) do
          if applies(e, o) then check("quantize", e, o, th) end
        end
      end
    end)
    it("prune: the same mask, kept values, threshold and metrics (" .. th .. " threads)", function()
      for _, e in pairs(ws) do
        for _, o in ipairs(PRUNE) do check("prune", e, o, th) end
      end
    end)
  end

  it("the portable kernels (no x86 vector paths) give the same results", function()
    local was = K.portable(true)
    local ok, err = pcall(function()
      for _, e in pairs(ws) do
        for _, o in ipairs(QUANT) do
          if applies(e, o) then check("quantize", e, o, 2) end
        end
        for _, o in ipairs(PRUNE) do check("prune", e, o, 2) end
        check("palettize", e, PAL[1], 2)
      end
    end)
    K.portable(was)
    assert(ok, err)
    assert.has_error(function() K.portable() end) -- the setting is required
    assert.are.equal(was, K.portable(was)) -- and the previous one comes back
  end)

  it("mode unique picks the same width; lazily unpacked views match", function()
    local e = ws.small
    local few = model(dir .. "/few.mlpackage", { { name = "few", shape = { 40, 64 }, std = 1, seed = 5, edit = function(a)
      for i = 1, #a do a[i] = (i % 5) - 2 end
    end } })
    local fe = blobs(few).few
    local r, ref = check("palettize", fe, { mode = "unique" }, 2)
    assert.are.equal(3, r.nbits) -- five distinct values
    assert.are.equal(ref.codes, r.codes)
    local p, pref = check("prune", e, { sparsity = 0.5 }, 2)
    assert.are.equal(pref.mask_bytes, p.mask_bytes)
    same_array(p.nonzero, pref.nonzero, "nonzero")
    local q, qref = check("quantize", e, { dtype = "int4", granularity = "per_block", block_size = 16 }, 2)
    same_array(q.codes, qref.codes, "codes")
  end)

  it("reads a blob the same in place (a zipped package) as read from its file", function()
    local zpath = dir .. "/blob.mlpackage.zip"
    m:save(zpath)
    local mz = assert(mlsh.try_load(zpath))
    local zs = blobs(mz)
    for _, name in ipairs({ "big", "rows" }) do
      for _, c in ipairs({ { "quantize", { dtype = "int8" } }, { "palettize", { nbits = 4 } }, { "prune", { sparsity = 0.5 } } }) do
        local function run(e) return K[c[1] .. "_blob"](e.root, e.file, e.offset, copy(c[2], { shape = e.shape, weight_dtype = "fp16" })) end
        local a, b = run(ws[name]), run(zs[name])
        assert.is_nil(a.mapped) -- read from the file: no page of the mapping touched
        assert.is_true(b.mapped)
        for _, k in ipairs({ "indices", "data", "mask", "nonzero_bytes" }) do assert.are.equal(a[k], b[k]) end
        for _, k in ipairs(METRIC_KEYS) do assert.are.equal(a.metrics[k], b.metrics[k]) end
      end
    end
    mz:close()
  end)

  it("an inf or NaN anywhere in the blob is an error, with or without metrics", function()
    for _, bad in ipairs({ math.huge, -math.huge, 0 / 0 }) do
      for _, at in ipairs({ 1, 1000, 3000 }) do -- in a whole vector, in a row's middle, in the last partial vector
        local bm = model(dir .. "/bad.mlpackage", { { name = "w", shape = { 40, 75 }, std = 1, seed = 7, edit = function(a)
          a[at] = bad
        end } })
        local e = blobs(bm).w
        for _, c in ipairs({ { "quantize", { dtype = "int8" } }, { "quantize", { dtype = "int4", granularity = "per_block", block_size = 25 } },
                             { "prune", { sparsity = 0.5 } }, { "palettize", { nbits = 4 } } }) do
          for _, metrics in ipairs({ true, false }) do
            local ok, err = pcall(K[c[1] .. "_blob"], e.root, e.file, e.offset,
              copy(c[2], { shape = e.shape, weight_dtype = "fp16", metrics = metrics }))
            assert(not ok and tostring(err):match("NaN or infinity"), c[1] .. " with " .. tostring(bad) .. " at " .. at ..
              ": " .. tostring(err))
          end
        end
        bm:close()
      end
    end
  end)

  it("a weight file cut short after it was opened is an error, not a crash", function()
    local path = dir .. "/cut.mlpackage"
    local cm = model(path, { { name = "w", shape = { 576, 1024 }, std = 1, seed = 21 } })
    local e = blobs(cm).w
    local o = { dtype = "int8", shape = e.shape, weight_dtype = "fp16" }
    assert.is_table(K.quantize_blob(e.root, e.file, e.offset, o)) -- maps the file
    local wpath = path .. "/Data/com.apple.CoreML/weights/weight.bin"
    local f = assert(io.open(wpath, "rb"))
    local head = f:read(8192)
    f:close()
    f = assert(io.open(wpath, "wb")) -- the same file, truncated under the model's mapping
    f:write(head)
    f:close()
    local ok, err = pcall(K.quantize_blob, e.root, e.file, e.offset, o)
    assert.is_false(ok)
    assert.matches("could not be read", tostring(err))
    cm:close()
  end)

  it("returns nil for what it does not cover, so the caller takes the Array kernel", function()
    local e = ws.big
    local function call(fn, o) return fn(e.root, e.file, e.offset, copy({ weight_dtype = "fp16" }, copy(o, { shape = e.shape }))) end
    assert.is_nil(call(K.palettize_blob, { nbits = 4, granularity = "per_grouped_channel", group_size = 4 }))
    assert.is_nil(call(K.palettize_blob, { nbits = 4, per_channel_scale = true }))
    assert.is_nil(call(K.prune_blob, { n_m = { 2, 4 } }))
    assert.is_nil(call(K.prune_blob, { sparsity = 0.5, block_size = 2 }))
    assert.is_nil(call(K.quantize_blob, { dtype = "int8", weight_dtype = "fp32" }))
    assert.is_nil(call(K.palettize_blob, { nbits = 4, distinct = "sort" }))
    local m32 = model(dir .. "/fp32.mlpackage", { { name = "w", shape = { 64, 64 }, std = 1, seed = 9 } }, "fp32")
    local e32 = blobs(m32).w
    assert.are.equal("fp32", e32.dtype)
    assert.is_nil(K.quantize_blob(e32.root, e32.file, e32.offset, { dtype = "int8", shape = e32.shape, weight_dtype = "fp16" }))
    -- a shape holding more elements than the blob: not read
    assert.is_nil(K.quantize_blob(e.root, e.file, e.offset, { dtype = "int8", shape = { 305, 1000 }, weight_dtype = "fp16" }))
  end)

  it("refuses inf and NaN with the Array kernel's message", function()
    local bad = model(dir .. "/bad.mlpackage", {
      { name = "inf", shape = { 64, 64 }, std = 1, seed = 11, edit = function(a) a[100] = math.huge end },
      { name = "nan", shape = { 64, 64 }, std = 1, seed = 12, edit = function(a) a[7] = 0 / 0 end },
      -- in the second of two task spans
      { name = "late_inf", shape = { 576, 1024 }, std = 1, seed = 13, edit = function(a) a[560000] = -math.huge end },
    })
    for _, e in pairs(blobs(bad)) do
      for _, c in ipairs({ { "quantize", { dtype = "int8" } }, { "palettize", { nbits = 4 } }, { "prune", { sparsity = 0.5 } } }) do
        local o = copy(c[2], { weight_dtype = "fp16" })
        local ok1, e1 = pcall(K[c[1] .. "_blob"], e.root, e.file, e.offset, copy(o, { shape = e.shape }))
        local ok2, e2 = pcall(K[c[1]], e:values(), o)
        assert.is_false(ok1)
        assert.is_false(ok2)
        assert.are.equal(tostring(e2):gsub("^.-compress", "compress"), tostring(e1):gsub("^.-compress", "compress"))
      end
    end
  end)
end)

describe("compress.metrics signal sum", function()
  it("equals the element-order sum of squares for sums that cross binades, ties and NaNs", function()
    for trial = 1, 12 do
      local n = ({ 1000, 70001, 300000 })[trial % 3 + 1]
      local x = K.randn(n, { seed = trial, std = ({ 0.02, 3, 1e-3, 700 })[trial % 4 + 1], weight_dtype = "fp16" })
      if trial % 5 == 0 then for i = 1, n, 3 do x[i] = 0.5 end end
      if trial % 6 == 0 then for i = 1, n, 11 do x[i] = 0 / 0 end end
      local y = K.randn(n, { seed = trial + 50 })
      for th = 1, 2 do
        assert.are.equal(lua_sum_sq(x), K.metrics(x, y, { signal = true, threads = th }).sum_sq)
      end
    end
  end)
end)
