-- Fixtures for the playbooks, checklists, reports and graph specs: small real models written with
-- mlsh's own writers, each making one automatic check pick one branch. Compressed models carry
-- real weight data (constexpr ops in the iOS16 attribute form and the iOS18 input form) and the
-- uncompressed original they came from, so --original comparisons measure something real.
--   local P = require "playbook_fixtures"
--   local fx = P.shared()       -- built once under build/test-fixtures-playbooks (also the rule fixtures: fx.rules)
local core = require "mlsh.core"
local F = require "fixtures"
local R = require "rule_fixtures"

local P = {}

-- Deterministic normal samples (LCG + Box-Muller): the same files every run.
local function gaussian(n, seed, scale)
  local state = seed or 12345
  local function uniform()
    state = (state * 1103515245 + 12345) % 2147483648
    return (state + 1) / 2147483649
  end
  local out = {}
  for i = 1, n, 2 do
    local u1, u2 = uniform(), uniform()
    local r = math.sqrt(-2 * math.log(u1)) * (scale or 0.05)
    out[i] = r * math.cos(2 * math.pi * u2)
    if i + 1 <= n then out[i + 1] = r * math.sin(2 * math.pi * u2) end
  end
  return out
end
P.gaussian = gaussian

local function fp16(values)
  -- round through fp16 so "original" values are exactly what the file holds
  local a = core.array.decode(core.array.new(values):encode("fp16"), "fp16", #values)
  return a:totable()
end

-- Pack codes LSB-first into bytes (the constexpr_lut_to_dense / sparse mask layout).
local function pack(codes, bits)
  local bytes, acc, nacc = {}, 0, 0
  for _, c in ipairs(codes) do
    acc = acc | (c << nacc)
    nacc = nacc + bits
    while nacc >= 8 do
      bytes[#bytes + 1] = acc & 0xFF
      acc, nacc = acc >> 8, nacc - 8
    end
  end
  if nacc > 0 then bytes[#bytes + 1] = acc & 0xFF end
  return bytes
end
P.pack = pack

-- ---- compression (fixture side, independent of mlsh's decoder) --------------------------------

-- Uniform palettization with one LUT per tensor: lut, codes, reconstruction.
function P.palettize_uniform(w, nbits)
  local k = 1 << nbits
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(w) do lo, hi = math.min(lo, x), math.max(hi, x) end
  local lut = {}
  for i = 0, k - 1 do lut[i + 1] = lo + (hi - lo) * i / (k - 1) end
  lut = fp16(lut)
  local codes, recon = {}, {}
  for i, x in ipairs(w) do
    local best, bd = 0, math.huge
    for j = 1, k do
      local d = math.abs(lut[j] - x)
      if d < bd then best, bd = j - 1, d end
    end
    codes[i], recon[i] = best, lut[best + 1]
  end
  return lut, codes, recon
end

-- Symmetric int quantization with one scale per row (rows = per_channel) or per tensor.
function P.quantize(w, rows, cols, qmax, per_tensor, block)
  local scales, q, recon = {}, {}, {}
  local groups_per_row = block and (cols // block) or 1
  local function range(r, g)
    local m = 0
    local c0, c1 = 1, cols
    if block then c0, c1 = (g - 1) * block + 1, g * block end
    for c = c0, c1 do m = math.max(m, math.abs(w[(r - 1) * cols + c])) end
    return m
  end
  local global = 0
  for _, x in ipairs(w) do global = math.max(global, math.abs(x)) end
  for r = 1, rows do
    for g = 1, groups_per_row do
      local m = per_tensor and global or range(r, g)
      scales[(r - 1) * groups_per_row + g] = fp16({ (m > 0 and m or 1) / qmax })[1]
    end
  end
  for r = 1, rows do
    for c = 1, cols do
      local i = (r - 1) * cols + c
      local g = block and ((c - 1) // block + 1) or 1
      local s = per_tensor and scales[1] or scales[(r - 1) * groups_per_row + g]
      local v = math.floor(w[i] / s + 0.5)
      v = math.max(-qmax, math.min(qmax, v))
      q[i], recon[i] = v, s * v
    end
  end
  if per_tensor then scales = { scales[1] } end
  return scales, q, recon
end

-- Magnitude pruning of the smallest `sparsity` fraction: mask bits, nonzero values, reconstruction.
function P.prune(w, sparsity)
  local mags = {}
  for i, x in ipairs(w) do mags[i] = { math.abs(x), i } end
  table.sort(mags, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local zero = {}
  for k = 1, math.floor(#w * sparsity) do zero[mags[k][2]] = true end
  local mask, nz, recon = {}, {}, {}
  for i, x in ipairs(w) do
    if zero[i] then mask[i], recon[i] = 0, 0
    else mask[i], recon[i] = 1, x; nz[#nz + 1] = x end
  end
  return mask, nz, recon
end

-- ---- model building -----------------------------------------------------------------------------

local N = 64 -- each weight is N x N = 4096 elements (above coremltools' 2048 threshold)

-- Three fp16 weights: W1, W2 gaussian; W3 gaussian, with outliers (`outliers`), or +-1 (`binary`).
function P.weights(kind)
  local w1, w2 = fp16(gaussian(N * N, 11)), fp16(gaussian(N * N, 22))
  local w3 = gaussian(N * N, 33)
  if kind == "outliers" then
    for r = 0, N - 1 do w3[r * N + (r * 7) % N + 1] = (r % 2 == 0 and 1 or -1) * 2.5 end
  elseif kind == "binary" then
    for i = 1, #w3 do w3[i] = (w3[i] >= 0) and 0.05 or -0.05 end
  end
  return { W1 = w1, W2 = w2, W3 = fp16(w3) }
end

local function blob(blobs, dtype, shape, values, n)
  local bytes = type(values) == "string" and values or core.array.new(values):encode(dtype)
  local off = blobs:add(dtype, bytes, n or #values)
  return R.blob(dtype, shape, off)
end

-- x[1,64] -> linear(W1) -> relu -> linear(W2) -> relu -> linear(W3) -> y, all fp16.
-- producers: {W1 = function(blobs) -> list of ops producing "W1"}; default: a const with the data.
local function three_layer(weights, producers, opts)
  opts = opts or {}
  local blobs = core.blobfile.writer()
  local ops = {}
  for _, name in ipairs({ "W1", "W2", "W3" }) do
    local make = producers and producers[name]
    if make then
      for _, o in ipairs(make(blobs, name, weights[name])) do ops[#ops + 1] = o end
    else
      ops[#ops + 1] = R.const(name, blob(blobs, "fp16", { N, N }, weights[name]), "fp16", { N, N })
    end
  end
  local x = "x"
  for _, o in ipairs(opts.pre_ops or {}) do ops[#ops + 1] = o end
  if opts.pre_ops then x = opts.pre_out end
  local prev = x
  for i, name in ipairs({ "W1", "W2", "W3" }) do
    local out = i == 3 and "y" or ("h" .. i)
    ops[#ops + 1] = { type = "linear", name = "linear_" .. i, inputs = { x = prev, weight = name }, out = { i == 3 and "y" or ("l" .. i), "fp16", { 1, N } } }
    if i < 3 then
      ops[#ops + 1] = { type = "relu", name = "relu_" .. i, inputs = { x = "l" .. i }, out = { out, "fp16", { 1, N } } }
      prev = out
    end
  end
  local spec = R.program { spec = opts.spec or 7, opset = opts.opset or "CoreML6",
    inputs = { { name = "x", dtype = "fp16", shape = { 1, N } } }, outputs = { { name = "y", dtype = "fp16", shape = { 1, N } } },
    ops = ops }
  local md = spec.description:mutable("metadata")
  md.author, md.license, md.versionString, md.shortDescription = "mlsh tests", "MIT", "1.0", "three linear layers"
  local ud = md:add("userDefined")
  ud.key, ud.value = "com.github.apple.coremltools.version", opts.coremltools or "8.1"
  return spec, blobs:bytes()
end
P.three_layer = three_layer

-- iOS16 palettization producer (attributes: packed indices, 1-D LUT, shape).
local function lut16(nbits, expected)
  return function(blobs, name, w)
    local lut, codes, recon = P.palettize_uniform(w, nbits)
    expected[name] = recon
    local bytes = pack(codes, nbits)
    return { { type = "constexpr_lut_to_dense", name = name .. "_palettized",
      attrs = { indices = blob(blobs, "uint8", { #bytes }, bytes), lut = R.value("fp16", { #lut }, lut),
                shape = R.value("uint32", { 2 }, { N, N }) }, out = { name, "fp16", { N, N } } } }
  end
end

-- iOS18 grouped palettization (inputs: uintN indices of the full shape, LUT [groups,1,2^n,1]).
local function lut18_grouped(nbits, groups, expected)
  return function(blobs, name, w)
    local rows = N // groups
    local codes, recon, luts = {}, {}, {}
    for g = 1, groups do
      local part = {}
      for r = (g - 1) * rows + 1, g * rows do
        for c = 1, N do part[#part + 1] = w[(r - 1) * N + c] end
      end
      local lut, pc, pr = P.palettize_uniform(part, nbits)
      for _, v in ipairs(lut) do luts[#luts + 1] = v end
      local k = 0
      for r = (g - 1) * rows + 1, g * rows do
        for c = 1, N do
          k = k + 1
          codes[(r - 1) * N + c], recon[(r - 1) * N + c] = pc[k], pr[k]
        end
      end
    end
    expected[name] = recon
    local idt = "uint" .. nbits
    return { { type = "constexpr_lut_to_dense", name = name .. "_palettized",
      inputs = { indices = blob(blobs, idt, { N, N }, codes), lut = R.value("fp16", { groups, 1, 1 << nbits, 1 }, luts) },
      out = { name, "fp16", { N, N } } } }
  end
end

-- iOS16 int8 affine quantization (attributes), per channel or per tensor.
local function affine8(per_tensor, expected)
  return function(blobs, name, w)
    local scales, q, recon = P.quantize(w, N, N, 127, per_tensor)
    expected[name] = recon
    local zp = per_tensor and R.value("int8", {}, 0) or R.value("int8", { N }, (function()
      local z = {}
      for i = 1, N do z[i] = 0 end
      return z
    end)())
    local sc = per_tensor and R.value("fp16", {}, scales[1]) or R.value("fp16", { N }, scales)
    return { { type = "constexpr_affine_dequantize", name = name .. "_quantized",
      attrs = { quantized_data = blob(blobs, "int8", { N, N }, q), zero_point = zp, scale = sc,
                axis = R.value("int32", {}, 0) }, out = { name, "fp16", { N, N } } } }
  end
end

-- iOS18 blockwise int4 quantization (inputs), per channel (block nil) or per block.
local function blockwise4(block, expected)
  return function(blobs, name, w)
    local scales, q, recon = P.quantize(w, N, N, 7, false, block)
    expected[name] = recon
    local sshape = { N, block and (N // block) or 1 }
    return { { type = "constexpr_blockwise_shift_scale", name = name .. "_quantized",
      inputs = { data = blob(blobs, "int4", { N, N }, q), scale = R.value("fp16", sshape, scales) },
      out = { name, "fp16", { N, N } } } }
  end
end

-- iOS16 sparse weights (attributes: nonzero data, packed bit mask, shape).
local function sparse16(sparsity, expected)
  return function(blobs, name, w)
    local sp = type(sparsity) == "table" and sparsity[name] or sparsity
    local mask, nz, recon = P.prune(w, sp)
    expected[name] = recon
    local bytes = pack(mask, 1)
    return { { type = "constexpr_sparse_to_dense", name = name .. "_sparse",
      attrs = { nonzero_data = blob(blobs, "fp16", { #nz }, fp16(nz)), mask = blob(blobs, "uint8", { #bytes }, bytes),
                shape = R.value("uint32", { 2 }, { N, N }) }, out = { name, "fp16", { N, N } } } }
  end
end

local function all3(make) return { W1 = make, W2 = make, W3 = make } end

-- A fp16 program whose only weights are immediates: loads completely (no weight file needed).
local function immediate_mlp(spec, opset)
  return R.program { spec = spec, opset = opset,
    inputs = { { name = "x", dtype = "fp16", shape = { 1, 16 } } }, outputs = { { name = "y", dtype = "fp16", shape = { 1, 8 } } },
    ops = { R.const("W", R.value("fp16", { 8, 16 }, F.seq(128)), "fp16", { 8, 16 }),
            { type = "linear", name = "linear_0", inputs = { x = "x", weight = "W" }, out = { "lin", "fp16", { 1, 8 } } },
            { type = "relu", name = "relu_0", inputs = { x = "lin" }, out = { "y", "fp16", { 1, 8 } } } } }
end

-- A declared-only fp16 model of `layers` 16384x16384 linears (512 MiB each): big, but ANE-eligible.
local function big_fp16(layers)
  local K = 16384
  local ops, prev = {}, "x"
  for i = 1, layers do
    ops[#ops + 1] = R.const("W" .. i, R.blob("fp16", { K, K }, 64 + (i - 1) * (K * K * 2 + 64)), "fp16", { K, K })
    local out = i == layers and "y" or ("h" .. i)
    ops[#ops + 1] = { type = "linear", name = "linear_" .. i, inputs = { x = prev, weight = "W" .. i }, out = { out, "fp16", { 1, K } } }
    prev = out
  end
  return R.program { spec = 7, opset = "CoreML6", inputs = { { name = "x", dtype = "fp16", shape = { 1, K } } },
    outputs = { { name = "y", dtype = "fp16", shape = { 1, K } } }, ops = ops }
end

function P.build_all(dir)
  assert(core.fs.mkdir_p(dir))
  local fx = { dir = dir, rules = R.shared(), expected = {} }
  local function pkg(name, spec, wb)
    return F.write_package(dir .. "/" .. name, spec, wb)
  end
  local function build(name, kind, producers, opts)
    local spec, wb = three_layer(P.weights(kind), producers, opts)
    fx[name] = pkg(name .. ".mlpackage", spec, wb)
    return fx[name]
  end
  -- originals
  build("orig_plain", "plain")
  build("orig_outliers", "outliers")
  build("orig_binary", "binary")
  -- complete, loadable models for the load-failure tree
  fx.complete = fx.orig_plain
  fx.spec8_complete = pkg("spec8_complete.mlpackage", immediate_mlp(8, "CoreML7"))
  fx.incomplete = F.write_package(dir .. "/incomplete.mlpackage", (three_layer(P.weights("plain"))), nil)
  fx.truncated_weights = F.write_package(dir .. "/truncated_weights.mlpackage", (three_layer(P.weights("plain"))),
    string.rep("\0", 100))
  fx.old_converter = pkg("old_converter.mlpackage", (three_layer(P.weights("plain"), nil, { coremltools = "5.2" })))
  -- palettization
  local e = fx.expected
  e.pal2, e.pal4, e.pal6_plain, e.pal6_outliers, e.pal4_grouped = {}, {}, {}, {}, {}
  build("pal2", "plain", all3(lut16(2, e.pal2)))
  build("pal4", "plain", all3(lut16(4, e.pal4)))
  build("pal6_plain", "plain", all3(lut16(6, e.pal6_plain)))
  build("pal6_outliers", "outliers", all3(lut16(6, e.pal6_outliers)))
  build("pal4_grouped", "plain", all3(lut18_grouped(4, 4, e.pal4_grouped)), { spec = 9, opset = "CoreML8" })
  -- quantization
  e.q8_tensor, e.q8_plain, e.q8_outliers, e.q4_channel, e.q4_block = {}, {}, {}, {}, {}
  build("q8_tensor", "plain", all3(affine8(true, e.q8_tensor)))
  build("q8_plain", "plain", all3(affine8(false, e.q8_plain)))
  build("q8_outliers", "outliers", all3(affine8(false, e.q8_outliers)))
  build("q4_channel", "plain", all3(blockwise4(nil, e.q4_channel)), { spec = 9, opset = "CoreML8" })
  build("q4_block", "plain", all3(blockwise4(32, e.q4_block)), { spec = 9, opset = "CoreML8" })
  -- W8A8: activation quantize/dequantize in front of the first linear
  e.w8a8 = {}
  build("w8a8", "plain", all3(affine8(false, e.w8a8)), { spec = 8, opset = "CoreML7", pre_out = "xq", pre_ops = {
    { type = "quantize", name = "x_quantize", inputs = { input = "x", scale = R.value("fp16", {}, 0.02),
      output_dtype = R.value("string", {}, "int8") }, out = { "x_int8", "int8", { 1, N } } },
    { type = "dequantize", name = "x_dequantize", inputs = { input = "x_int8", scale = R.value("fp16", {}, 0.02) },
      out = { "xq", "fp16", { 1, N } } } } })
  -- pruning
  e.sparse80, e.sparse50_plain, e.sparse50_binary = {}, {}, {}
  build("sparse80", "plain", all3(sparse16(0.8, e.sparse80)))
  build("sparse50_plain", "plain", all3(sparse16(0.5, e.sparse50_plain)))
  build("sparse50_binary", "binary", all3(sparse16(0.5, e.sparse50_binary)))
  -- palettization and pruning in one model: the check cannot pick one
  e.joint = {}
  build("joint", "plain", { W1 = lut16(4, e.joint), W2 = sparse16(0.5, e.joint) })
  -- big fp16 model (declared weights only): over 1 GiB, every op ANE-eligible
  fx.big_fp16 = pkg("big_fp16.mlpackage", big_fp16(3))
  -- a NeuralNetwork with 8-bit linearly quantized weights
  fx.nn_quant = dir .. "/nn_quant.mlmodel"
  F.write(fx.nn_quant, F.nn_model({ quantized = true }):encode())
  return fx
end

local shared
function P.shared()
  if not shared then
    -- beside the other fixture folders; files are replaced atomically, never wiped (concurrent runs)
    shared = P.build_all((os.getenv("MLSH_HOME") or ".") .. "/build/test-fixtures-playbooks")
  end
  return shared
end

-- Write a scratch file (answers, playbooks) and return its path.
function P.scratch(name, text)
  local d = F.tmpdir()
  local path = d .. "/" .. name
  F.write(path, text)
  return path, d
end

return P
