-- Fixtures for the advisory rules (rules/advisory/*.lua): for every rule a model that has the
-- problem and one that does not, written with mlsh.builder or, where the builder cannot express it
-- (constexpr ops, int8 I/O, a declared 2 GiB weight), with mlsh's protobuf writer (rule_fixtures).
--   local A = require "advisory_fixtures"
--   local fx = A.shared()   -- {["advisory-x"] = {fires = path, quiet = path, opts = {...}?}}
local B = require "mlsh.builder"
local F = require "fixtures"
local R = require "rule_fixtures"

local A = {}

local function save(p, dir, name) return p:save(dir .. "/" .. name .. ".mlpackage") end

local function write_raw(dir, name, spec)
  return F.write_package(dir .. "/" .. name .. ".mlpackage", spec, nil)
end

local function gen(n, fn)
  local t = {}
  for i = 1, n do t[i] = fn(i) end
  return t
end

local function one_op(opset, precision, build)
  local p = B.program { opset = opset or "iOS17", precision = precision or "fp16" }
  build(p:func("main"))
  return p
end

local function sdpa(dir, name, count)
  return save(one_op("iOS18", "fp16", function(f)
    local shape = { 1, 16, 2048, 64 }
    local q, k, v = f:input("q", "fp16", shape), f:input("k", "fp16", shape), f:input("v", "fp16", shape)
    local y = q
    for _ = 1, count do y = f:op("scaled_dot_product_attention", { query = y, key = k, value = v }) end
    f:output("y", y, { dtype = "fp16" })
  end), dir, name)
end

local function state(dir, name, width)
  return save(one_op("iOS18", "fp16", function(f)
    local x = f:input("x", "fp16", { 1, width })
    local s = f:state("acc", "fp16", { 1, width })
    local y = f:op("add", { x = x, y = f:op("read_state", { input = s }) })
    f:update_state(s, y)
    f:output("y", y, { dtype = "fp16" })
  end), dir, name)
end

local function attention(dir, name, fused)
  return save(one_op("iOS18", "fp16", function(f)
    local shape = { 1, 4, 16, 8 }
    local q, k, v = f:input("q", "fp16", shape), f:input("k", "fp16", shape), f:input("v", "fp16", shape)
    local y
    if fused then
      y = f:op("scaled_dot_product_attention", { query = q, key = k, value = v })
    else
      local s = f:op("matmul", { x = q, y = k, transpose_y = true })
      s = f:op("mul", { x = s, y = 0.35 })
      y = f:op("matmul", { x = f:op("softmax", { x = s, axis = -1 }), y = v })
    end
    f:output("y", y, { dtype = "fp16" })
  end), dir, name)
end

-- x[1,N] -> linear(W) where W comes from `weight_ops` (raw ops producing "W" [N,N] fp16)
local N = 16
local function raw_linear(dir, name, spec, opset, weight_ops, inputs)
  local ops = {}
  for _, o in ipairs(weight_ops) do ops[#ops + 1] = o end
  ops[#ops + 1] = { type = "linear", name = "linear_0", inputs = { x = "x", weight = "W" }, out = { "y", "fp16", { 1, N } } }
  return write_raw(dir, name, R.program { spec = spec, opset = opset,
    inputs = inputs or { { name = "x", dtype = "fp16", shape = { 1, N } } },
    outputs = { { name = "y", dtype = "fp16", shape = { 1, N } } }, ops = ops })
end

local function affine(dtype, zp)
  return { { type = "constexpr_affine_dequantize", name = "W_quantized",
    attrs = { quantized_data = R.value(dtype, { N, N }, gen(N * N, function(i) return i % 100 end)),
              zero_point = R.value(dtype, {}, zp), scale = R.value("fp16", {}, 0.01), axis = R.value("int32", {}, 0) },
    out = { "W", "fp16", { N, N } } } }
end

local function lut_ops(scaled)
  local lut = { type = "constexpr_lut_to_dense", name = scaled and "W_lut" or "W_palettized",
    attrs = { indices = R.value("uint8", { N * N // 2 }, gen(N * N // 2, function(i) return i % 256 end)),
              lut = R.value("fp16", { 16 }, gen(16, function(i) return i / 16 end)), shape = R.value("uint32", { 2 }, { N, N }) },
    out = { scaled and "W_dense" or "W", "fp16", { N, N } } }
  if not scaled then return { lut } end
  return { lut, { type = "constexpr_blockwise_shift_scale", name = "W_scaled",
    inputs = { data = "W_dense", scale = R.value("fp16", { N, 1 }, gen(N, function() return 0.5 end)) },
    out = { "W", "fp16", { N, N } } } }
end

local function pal_conv(dir, name, stride)
  local ops = lut_ops(false)
  ops[1].attrs.shape = R.value("uint32", { 4 }, { N, N, 1, 1 })
  ops[1].out = { "W", "fp16", { N, N, 1, 1 } }
  local o = 32 // stride
  ops[#ops + 1] = { type = "conv", name = "conv_0", inputs = { x = "x", weight = "W",
    strides = R.value("int32", { 2 }, { stride, stride }), pad_type = R.value("string", {}, "valid"),
    dilations = R.value("int32", { 2 }, { 1, 1 }), groups = R.value("int32", {}, 1) },
    out = { "y", "fp16", { 1, N, o, o } } }
  return write_raw(dir, name, R.program { spec = 7, opset = "CoreML6",
    inputs = { { name = "x", dtype = "fp16", shape = { 1, N, 32, 32 } } },
    outputs = { { name = "y", dtype = "fp16", shape = { 1, N, o, o } } }, ops = ops })
end

local function big_weight(dir, name, n)
  return write_raw(dir, name, R.program { spec = 7, opset = "CoreML6",
    inputs = { { name = "x", dtype = "fp16", shape = { 1, n } } }, outputs = { { name = "y", dtype = "fp16", shape = { 1, n } } },
    ops = { R.const("W", R.blob("fp16", { n, n }, 64), "fp16", { n, n }),
            { type = "linear", name = "linear_0", inputs = { x = "x", weight = "W" }, out = { "y", "fp16", { 1, n } } } } })
end

local function multi(dir, name, count, same_weights)
  local p = B.program { opset = "iOS18", precision = "fp16" }
  for i = 1, count do
    local f = p:func(i == 1 and "main" or ("f" .. i))
    local x = f:input("x", "fp16", { 1, 64 })
    if same_weights ~= nil then
      local w = f:const("w", B.random.normal { seed = same_weights and 1 or i, shape = { 64, 64 }, std = 0.1 })
      x = f:op("linear", { x = x, weight = w })
    end
    f:output("y", f:op("relu", { x = x }), { dtype = "fp16" })
  end
  return save(p, dir, name)
end

local function simple(dir, name, shape, opset)
  return save(one_op(opset or "iOS17", "fp16", function(f)
    f:output("y", f:op("relu", { x = f:input("x", "fp16", shape) }), { dtype = "fp16" })
  end), dir, name)
end

local function reshaped(dir, name, rank)
  return save(one_op("iOS17", "fp16", function(f)
    local x = f:input("x", "fp16", { 64 })
    local shape = rank == 6 and { 1, 2, 2, 2, 2, 4 } or { 2, 2, 2, 2, 4 }
    local y = f:op("relu", { x = f:op("reshape", { x = x, shape = shape }) })
    f:output("y", f:op("reshape", { x = y, shape = { 64 } }), { dtype = "fp16" })
  end), dir, name)
end

local function masked(dir, name, fill)
  return save(one_op("iOS17", "fp16", function(f)
    local x = f:input("x", "fp16", { 1, 1, 16, 16 })
    local vals = {}
    for r = 1, 16 do
      for c = 1, 16 do vals[#vals + 1] = c > r and fill or 0 end
    end
    local mask = f:const("mask", B.tensor("fp16", vals, { 1, 1, 16, 16 }))
    f:output("y", f:op("softmax", { x = f:op("add", { x = x, y = mask }), axis = -1 }), { dtype = "fp16" })
  end), dir, name)
end

local function strided(dir, name, stride)
  return save(one_op("iOS17", "fp16", function(f)
    local x = f:input("x", "fp16", { 1, 8, 30, 30 })
    local w = f:const("w", B.random.normal { seed = 9, shape = { 8, 8, 3, 3 }, std = 0.1 })
    f:output("y", f:op("conv", { x = x, weight = w, strides = { stride, stride }, pad_type = "same" }), { dtype = "fp16" })
  end), dir, name)
end

-- relu in fp16, then `body` (x fp16 -> fp16), output fp16: an fp16 program around the body
local function fp16_around(dir, name, body)
  return save(one_op("iOS17", "fp16", function(f)
    local x = f:op("relu", { x = f:input("x", "fp16", { 1, 64, 16, 16 }) })
    f:output("y", body(f, x), { dtype = "fp16" })
  end), dir, name)
end

-- x * 2 with the 2 as an fp32 literal (cast up, mul in fp32, cast down) or as an fp16 constant
local function literal(dir, name, dtype)
  return fp16_around(dir, name, function(f, x)
    local two = f:const("two", B.tensor(dtype, { 2.0 }, { 1 }))
    if dtype == "fp16" then return f:op("mul", { x = x, y = two }) end
    return f:op("cast", { x = f:op("mul", { x = f:op("cast", { x = x, dtype = "fp32" }), y = two }), dtype = "fp16" })
  end)
end

-- silu through fp32 casts (as Core AI's mps.swish lowering) or in fp16
local function silu(dir, name, through_fp32)
  return fp16_around(dir, name, function(f, x)
    if not through_fp32 then return f:op("silu", { x = x }) end
    return f:op("cast", { x = f:op("silu", { x = f:op("cast", { x = x, dtype = "fp32" }) }), dtype = "fp16" })
  end)
end

local function int_add(dir, name, dtype)
  return save(one_op("iOS17", "fp16", function(f)
    local x = f:input("x", dtype, { 1, 64 })
    f:output("y", f:op("add", { x = x, y = f:const("one", B.tensor(dtype, { 1 }, { 1 })) }), { dtype = dtype })
  end), dir, name)
end

local function pooled(dir, name, stride)
  return save(one_op("iOS17", "fp16", function(f)
    local x = f:input("x", "fp16", { 1, 8, 36, 36 })
    f:output("y", f:op("max_pool", { x = x, kernel_sizes = { 3, 3 }, strides = { stride, stride }, pad_type = "valid" }),
      { dtype = "fp16" })
  end), dir, name)
end

function A.build_all(dir)
  local fx = {}
  local function pair(id, fires, quiet, opts) fx["advisory-" .. id] = { fires = fires, quiet = quiet, opts = opts } end
  pair("int8-affine-zero-point", raw_linear(dir, "affine_int8", 7, "CoreML6", affine("int8", 0)),
    raw_linear(dir, "affine_uint8", 7, "CoreML6", affine("uint8", 127)))
  pair("state-dims-32", state(dir, "state270", 270), state(dir, "state256", 256))
  pair("two-large-sdpa", sdpa(dir, "sdpa2", 2), sdpa(dir, "sdpa1", 1))
  pair("sdpa-not-fused", attention(dir, "attn_decomposed", false), attention(dir, "attn_fused", true))
  pair("lut-scale-ordering", raw_linear(dir, "lut_scaled", 9, "CoreML8", lut_ops(true)),
    raw_linear(dir, "lut_plain", 9, "CoreML8", lut_ops(false)))
  local int8_in = { { name = "x", dtype = "int8", shape = { 1, N } } }
  local cast = { { type = "cast", name = "cast_0", inputs = { x = "x", dtype = R.value("string", {}, "fp16") },
                   out = { "xf", "fp16", { 1, N } } } }
  local function int8_model(name, spec)
    local ops = { cast[1], R.const("W", R.value("fp16", { N, N }, gen(N * N, function() return 0 end)), "fp16", { N, N }),
      { type = "linear", name = "linear_0", inputs = { x = "xf", weight = "W" }, out = { "y", "fp16", { 1, N } } } }
    return write_raw(dir, name, R.program { spec = spec, opset = "CoreML8", inputs = int8_in,
      outputs = { { name = "y", dtype = "fp16", shape = { 1, N } } }, ops = ops })
  end
  pair("int8-io-spec", int8_model("int8_io_spec9", 9), int8_model("int8_io_spec10", 10))
  pair("package-size-ios", big_weight(dir, "weights_2g", 32768), big_weight(dir, "weights_small", 64))
  pair("axis-cap", simple(dir, "wide20000", { 1, 20000 }), simple(dir, "wide16384", { 1, 16384 }))
  pair("rank-over-5", reshaped(dir, "rank6", 6), reshaped(dir, "rank5", 5))
  pair("last-axis-unaligned", simple(dir, "last7", { 1, 64, 64, 7 }), simple(dir, "last64", { 1, 64, 7, 64 }))
  pair("neg-inf-mask", masked(dir, "mask_inf", -math.huge), masked(dir, "mask_40000", -40000))
  pair("conv-stride-factors", strided(dir, "stride5", 5), strided(dir, "stride2", 2))
  pair("palettized-conv-stride", pal_conv(dir, "pal_stride4", 4), pal_conv(dir, "pal_stride2", 2))
  pair("dup-weights-functions", multi(dir, "multi_dup", 2, true), multi(dir, "multi_distinct", 2, false))
  pair("compute-plan-target", simple(dir, "ios17", { 1, 64 }, "iOS17"), simple(dir, "ios18", { 1, 64 }, "iOS18"))
  pair("program-count", multi(dir, "multi130", 130, nil), multi(dir, "multi2", 2, nil))
  pair("compute-dtype", int_add(dir, "add_int32", "int32"), int_add(dir, "add_fp16", "fp16"))
  pair("fp32-literal", literal(dir, "literal_fp32", "fp32"), literal(dir, "literal_fp16", "fp16"))
  pair("silu-fp32", silu(dir, "silu_fp32", true), silu(dir, "silu_fp16", false))
  pair("pool-stride", pooled(dir, "pool_stride3", 3), pooled(dir, "pool_stride2", 2))
  return fx
end

local shared
function A.shared()
  if not shared then shared = A.build_all(F.tmpdir()) end
  return shared
end

return A
