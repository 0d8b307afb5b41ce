-- interp_gemm_spec.lua — the blocked GEMM behind linear, matmul and conv at shapes that reach
-- every edge of its tiles: row counts that are not a multiple of the micro-tile's (6 or 8),
-- column counts at, under and between the 16/32-wide panels (the half-width AVX-512 tile and the
-- buffered partial tile), K across several 256-blocks, a linear's transposed store with bias, and
-- a linear of 1-4 rows (dot products).
-- Checked against naive loops; the AVX2 and portable kernels ($MLSH_NO_AVX512, $MLSH_NO_SIMD)
-- must agree with them too.
local IH = require "interp_helpers"
local F = require "fixtures"
local core = require "mlsh.core"

local values, build, close = IH.values, IH.build, IH.close

-- rows 1-4 of a linear take the dot-product path (gemv.c): N off its groups of 4, K off its 16 lanes
local SHAPES = { { 13, 49, 300 }, { 8, 16, 5 }, { 24, 17, 1 }, { 5, 33, 520 }, { 1, 1000, 64 }, { 37, 96, 257 },
  { 3, 13, 37 }, { 4, 7, 300 }, { 2, 5, 8 } }

local R = require "ref_math"
local matmul, linear = R.matmul, R.linear

local function model()
  return build("iOS17", function(f)
    for s, sh in ipairs(SHAPES) do
      local m, n, k = sh[1], sh[2], sh[3]
      local x = f:input("x" .. s, "fp32", { m, k })
      f:output("mm" .. s, f:op("matmul", { x = x, y = f:const("b" .. s, core.array.new(values(k * n, 100 + s)), { shape = { k, n } }) }))
      f:output("lin" .. s, f:op("linear", { x = x, weight = f:const("w" .. s, core.array.new(values(n * k, 200 + s)), { shape = { n, k } }),
        bias = f:const("bias" .. s, core.array.new(values(n, 300 + s)), { shape = { n } }) }))
    end
  end)
end

describe("blocked GEMM at tile edges", function()
  local path = model()
  local function inputs()
    local ins = {}
    for s, sh in ipairs(SHAPES) do ins["x" .. s] = IH.tensor(values(sh[1] * sh[3], s), { sh[1], sh[3] }) end
    return ins
  end

  it("matches naive loops (matmul, linear with bias)", function()
    local outs = IH.run(path, inputs())
    for s, sh in ipairs(SHAPES) do
      local m, n, k = sh[1], sh[2], sh[3]
      local X = values(m * k, s)
      close(outs["mm" .. s], matmul(X, values(k * n, 100 + s), m, n, k), 1e-5)
      close(outs["lin" .. s], linear(X, values(n * k, 200 + s), values(n, 300 + s), m, n, k), 1e-5)
    end
  end)

  for _, env in ipairs({ "MLSH_NO_AVX512=1", "MLSH_NO_SIMD=1" }) do
    it("matches them with " .. env .. " (AVX2 / portable kernels)", function()
      local dir = IH.dir .. "/gemm_" .. env:match("^[%w_]+")
      local args = {}
      for name, t in pairs(inputs()) do
        local file = string.format("%s_%s.npy", dir, name)
        assert(t:save(file))
        args[#args + 1] = string.format("--input %s=%s", name, F.q(file))
      end
      local ok = os.execute(string.format("%s %s run %s %s -o %s >/dev/null", env, os.getenv("MLSH_BIN") or "./mlsh", F.q(path),
        table.concat(args, " "), F.q(dir)))
      assert.is_true(ok == true or ok == 0, "mlsh run failed under " .. env)
      for s, sh in ipairs(SHAPES) do
        local m, n, k = sh[1], sh[2], sh[3]
        local X = values(m * k, s)
        close(assert(core.interp.npy_load(dir .. "/mm" .. s .. ".npy")), matmul(X, values(k * n, 100 + s), m, n, k), 1e-5)
        close(assert(core.interp.npy_load(dir .. "/lin" .. s .. ".npy")), linear(X, values(n * k, 200 + s), values(n, 300 + s), m, n, k), 1e-5)
      end
    end)
  end
end)
