-- Replays every input in tests/fuzz-regressions/<harness>/ through the entry point its harness
-- fuzzes. A replay passes when mlsh answers (a model, or nil plus a one-line reason) — a crash
-- would take the whole test run down, which is the failure this guards against.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local F = require "fixtures"

local root = (os.getenv("MLSH_HOME") or ".") .. "/tests/fuzz-regressions"

local function files(dir)
  local out = {}
  local p = io.popen("ls -1 '" .. dir .. "' 2>/dev/null")
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  return out
end

local function exercise(m)
  -- everything a command would do with a model that loaded
  pcall(function() return m:info() end)
  for _, w in ipairs(select(2, pcall(m.weights, m)) or {}) do pcall(w.values, w) end
  m:close()
end

local replay = {}
function replay.mlmodel(bytes, tmp)
  local p = tmp .. "/r.mlmodel"
  F.write(p, bytes)
  local m, err = mlsh.try_load(p)
  if m then exercise(m) else assert.truthy(err:find(p, 1, true), err) end
end
function replay.zip(bytes, tmp)
  local p = tmp .. "/r.mlpackage.zip"
  F.write(p, bytes)
  local m, err = mlsh.try_load(p)
  if m then exercise(m) else assert.is_string(err) end
end
function replay.json(bytes, tmp)
  local spec, wb = F.mlprogram()
  local p = F.write_package(tmp .. "/j.mlpackage", spec, wb, bytes)
  local m, err = mlsh.try_load(p)
  if m then exercise(m) else assert.truthy(err:find("Manifest.json", 1, true), err) end
end
function replay.blob(bytes, tmp)
  local spec = F.mlprogram()
  local p = F.write_package(tmp .. "/b.mlpackage", spec, bytes)
  local m = assert(mlsh.try_load(p))
  exercise(m)
end
function replay.onnx(bytes, tmp)
  local p = tmp .. "/r.onnx"
  F.write(p, bytes)
  local m, err = mlsh.try_load(p)
  if m then exercise(m) else assert.truthy(err:find(p, 1, true), err) end
end
function replay.miltext(bytes)
  local ok, res, err = pcall(core.miltext.parse, bytes)
  assert.is_true(ok)
  assert.truthy(res or err)
end
function replay.interp(bytes, tmp)
  local p = tmp .. "/i.mlmodel"
  F.write(p, bytes)
  local m = mlsh.try_load(p)
  if m then
    pcall(m.run, m, nil, { random = 1 })
    m:close()
  end
end
function replay.npy(bytes)
  local t, err = core.interp.npy_parse(bytes, "r.npy")
  assert.truthy(t or err)
end

function replay.pte(bytes, tmp)
  local p = tmp .. "/r.pte"
  F.write(p, bytes)
  local m, err = mlsh.try_load(p)
  if m then
    pcall(function() return m:info() end)
    m:close()
  else
    assert.truthy(err:find(p, 1, true), err)
  end
end
function replay.inmemoryfs(bytes, tmp) -- the payload of an inline Core ML delegate
  local p = tmp .. "/imfs.pte"
  F.write(p, require("pte_builder").pte{ methods = { { name = "forward", delegates = { { data = bytes } } } } })
  local prog = assert(require("mlsh.pte").open(p))
  local d = prog:delegates()[1]
  local t, err = d:tree()
  if t then
    local m = d:model()
    if m then pcall(function() return m:info() end) end
  else
    assert.truthy(err:find(p, 1, true), err)
  end
  prog:close()
end

function replay.espresso(bytes, tmp) -- model.espresso.weights of a compiled NeuralNetwork model
  local p = require("pte_fixtures").espresso_mlmodelc(tmp .. "/esp.mlmodelc")
  F.write(p .. "/model.espresso.weights", bytes)
  local m, err = mlsh.try_load(p)
  if m then exercise(m) else assert.truthy(err:find(p, 1, true), err) end
end

function replay.png(bytes, tmp) -- a PNG through core/pngdl.c in each channel mode
  local p = tmp .. "/r.png"
  F.write(p, bytes)
  for _, c in ipairs({ 1, 3 }) do
    local t, err = core.interp.png_load(p, c)
    if t then assert.are.equal(c, t:shape()[3]) else assert.truthy(err:find(p, 1, true), err) end
  end
end

-- fuzz_constexpr.c's input layout (op, argument, flag, then tensors: rank, dims 0..8, dtype, data)
-- replayed through core.constexpr, the binding over the same functions of core/constexpr.c.
local CX_DTYPES = { "int4", "uint4", "int8", "uint8", "uint1", "uint2", "fp16", "fp32" }
local CX_BITS = { int4 = 4, uint4 = 4, int8 = 8, uint8 = 8, uint1 = 1, uint2 = 2, fp16 = 16, fp32 = 32 }
function replay.constexpr(bytes)
  local pos = 1
  local function take()
    local b = bytes:byte(pos) or 0
    if pos <= #bytes then pos = pos + 1 end
    return b
  end
  local function tensor(max_rank)
    local shape, n = {}, 1
    for d = 1, take() % (max_rank + 1) do
      shape[d] = take() % 9
      n = n * shape[d]
    end
    local dtype = CX_DTYPES[take() % 8 + 1]
    local need = (n * CX_BITS[dtype] + 7) // 8
    if need > #bytes - pos + 1 then return nil end
    local s = { dtype = dtype, shape = shape, bytes = bytes:sub(pos, pos + need - 1) }
    pos = pos + need
    return s
  end
  local C = core.constexpr
  local op, arg = take() % 7, take()
  if arg >= 128 then arg = arg - 256 end
  local with_d = take() % 2 == 1
  local a, b = tensor(4), nil
  b = a and tensor(6)
  if not b then return end
  local calls = {
    [0] = function() local c = tensor(4); return c and C.affine(a, b, c, arg, "fp16") end,
    function() return C.lut(a, b, arg, "fp32") end,
    function() return C.sparse(a, b, "fp32") end,
    function() return C.shift_scale(a, b, with_d and tensor(6) or nil, "fp16") end,
    function() local c = tensor(4); return c and C.sparse_shift_scale(a, b, c, with_d and tensor(4) or nil, "fp32") end,
    function() local c = tensor(6); return c and C.lut_to_sparse(a, b, c, arg, "fp32") end,
    function() return C.lut({ dtype = "uint8", shape = { #bytes - pos + 1 }, bytes = bytes:sub(pos) }, b, nil, "fp32") end,
  }
  local ok, r, err = pcall(calls[op]) -- a result, nil + a message, or nil when the input ran out
  assert.is_true(ok, r)
  if r == nil and err ~= nil then assert.is_string(err) end
end

-- fuzz_compress.c's input (a 6-byte header, then fp16 codes tiled over the tensor) replayed
-- through the blob kernels of core.compress: the pass with metrics, without, and without on the
-- portable kernels must agree (an inf/NaN makes all three fail alike).
function replay.compress(bytes, tmp)
  if #bytes < 6 then return end
  local b = { bytes:byte(1, 6) }
  local rows, cols = b[3] + 1, (b[4] | b[5] << 8) % 1024 + 1
  local n, codes = rows * cols, bytes:sub(7, 6 + (#bytes - 6) // 2 * 2)
  local tiled = #codes > 0 and codes:rep(n // (#codes // 2) + 1):sub(1, 2 * n) or ("\0"):rep(2 * n)
  local B = require "mlsh.builder"
  local p = B.program { opset = "iOS18", precision = "fp16" }
  local f = p:func("main")
  f:output("y", B.layers.relu(f, f:input("x", "fp32", { 1, 4 })))
  f:output("w_out", f:const("w", core.array.decode(tiled, "fp16", n, { rows, cols })))
  local path = tmp .. "/c.mlpackage"
  core.fs.remove_tree(path)
  p:save(path)
  local m = mlsh.load(path)
  local e
  for _, w in ipairs(m:inventory({ threshold = 0 })) do if w.storage == "blob" then e = w end end
  local o, fn = { shape = e.shape, weight_dtype = "fp16", threads = b[1] & 2 ~= 0 and 2 or 1 }, core.compress.quantize_blob
  if b[1] & 1 ~= 0 then
    fn = core.compress.prune_blob
    if b[2] & 1 ~= 0 then o.mode, o.threshold = "threshold", b[6] / 64 else o.sparsity = b[6] / 255 end
  else
    o.dtype = (b[2] & 2 ~= 0 and "" or "u") .. "int" .. (b[2] & 1 ~= 0 and 4 or 8)
    o.symmetric = b[2] & 4 ~= 0
    local g, d = (b[2] >> 3) & 3, 1 + b[6] % 64
    if g == 1 then o.granularity = "per_tensor"
    elseif g == 2 and cols % d == 0 then o.granularity, o.block_size = "per_block", cols // d end
  end
  local function run(metrics, portable)
    local was = core.compress.portable(portable)
    local ok, r = pcall(fn, e.root, e.file, e.offset, setmetatable({ metrics = metrics }, { __index = o }))
    core.compress.portable(was)
    return ok, r
  end
  local ok1, r1 = run(true, false)
  for _, v in ipairs({ { false, false }, { false, true } }) do
    local ok2, r2 = run(v[1], v[2])
    assert.are.equal(ok1, ok2, tostring(r1) .. " / " .. tostring(r2))
    if ok1 and r1 then
      for _, k in ipairs({ "data", "mask", "nonzero_bytes", "nnz", "threshold" }) do
        assert(r1[k] == r2[k] or (r1[k] ~= r1[k] and r2[k] ~= r2[k]), k)
      end
    end
  end
  m:close()
end

describe("fuzz regressions", function()
  local tmp
  setup(function()
    tmp = F.shared().dir .. "/fuzz-replay"
    assert(core.fs.mkdir_p(tmp))
  end)
  for harness, fn in pairs(replay) do
    for _, name in ipairs(files(root .. "/" .. harness)) do
      it(harness .. "/" .. name .. " is handled", function()
        fn(F.read(root .. "/" .. harness .. "/" .. name), tmp)
      end)
    end
  end
  it("has a replay for every harness in fuzz/", function()
    for _, name in ipairs(files((os.getenv("MLSH_HOME") or ".") .. "/fuzz")) do
      local h = name:match("^fuzz_(.+)%.c$")
      if h then assert.is_function(replay[h], h) end
    end
  end)
end)
