-- weights_cli_spec.lua — the compression inventory: m:inventory() / w:values() on compressed
-- weights, and `mlsh weights` (text and --json keys, flags for weights left uncompressed, exits).
local mlsh = require "mlsh"
local json = require "mlsh.json"
local compress = require "mlsh.compress"
local CF = require "compress_fixtures"
local F = require "fixtures"

local dir = CF.tmpdir()
local BIN = os.getenv("MLSH_BIN") or "./mlsh"
local HOME = os.getenv("MLSH_HOME") or "."
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(args)
  local p = io.popen(string.format("MLSH_HOME=%s %s weights %s 2>%s/err; echo rc=$?", q(HOME), q(BIN), args, q(dir)))
  local s = p:read("a")
  p:close()
  local rc = tonumber(s:match("rc=(%d+)%s*$"))
  local f = io.open(dir .. "/err")
  local e = f:read("a")
  f:close()
  return s:gsub("rc=%d+%s*$", ""), rc, e
end

local base16 = CF.base(dir .. "/b16.mlpackage", { opset = "iOS16" })
local base18 = CF.base(dir .. "/b18.mlpackage", { opset = "iOS18" })
local function compressed(src, name, policy)
  local m = mlsh.load(src)
  local path = dir .. "/" .. name .. ".mlpackage"
  compress.save(m, path, policy)
  m:close()
  return path
end
local grouped = compressed(base18, "grouped", { palettize = { nbits = 4, granularity = "per_grouped_channel", group_size = 16 } })
local joint = compressed(base18, "joint", { prune = { sparsity = 0.5 }, palettize = { nbits = 2 } })
local int4 = compressed(base18, "int4", { quantize = { dtype = "int4", granularity = "per_block", block_size = 32 } })
local pal16 = compressed(base16, "pal16", { palettize = { nbits = 4 } })

local function by_name(list)
  local t = {}
  for _, r in ipairs(list) do t[r.name] = r end
  return t
end

describe("m:inventory()", function()
  it("lists consts and final constexpr outputs; w:values() decompresses", function()
    local m = mlsh.load(pal16)
    local inv = by_name(m:inventory())
    local e = inv.fc1_weight_to_fp16_palettized
    assert.are.equal("constexpr_lut_to_dense", e.op_type)
    assert.same({ 96, 32 }, e.shape)
    assert.same({ 96, 32 }, e:values():shape())
    assert.are.equal(96 * 32, #e:values())
    assert.same({ "linear", "weight", 1 }, { e.consumers[1].type, e.consumers[1].param, #e.consumers })
    assert.are.equal(96 * 32 / 2 + 16 * 2 + 8, e.bytes, "packed 4-bit indices + 16 fp16 entries + the uint32 shape")
    assert.are.equal(96 * 32 * 2, e.dense_bytes)
    assert.is_nil(e:blob())
    -- the storage view is unchanged: the LUT and indices are stored weights of their own
    local stored = by_name(m:weights())
    assert.truthy(stored["fc1_weight_to_fp16_palettized.indices"])
    assert.truthy(stored["fc1_weight_to_fp16_palettized.lut"])
    assert.are.equal(16, stored["fc1_weight_to_fp16_palettized.lut"].count)
    -- decompressed values come only from the LUT
    local lut = {}
    for _, v in ipairs(stored["fc1_weight_to_fp16_palettized.lut"]:values():totable()) do lut[v] = true end
    for _, v in ipairs(e:values():totable()) do assert.truthy(lut[v]) end
  end)

  it("flags weights a compressed model left uncompressed, and nothing in an uncompressed one", function()
    local inv = by_name(mlsh.load(grouped):inventory())
    assert.truthy(inv.fc2_weight_to_fp16.uncompressed_reason:find("100 output channels are not a multiple of the group size 16", 1, true))
    assert.truthy(inv.head_weight_to_fp16.uncompressed_reason:find("below the weight threshold", 1, true))
    assert.truthy(inv.conv1_bias_to_fp16.uncompressed_reason:find("rank 1", 1, true))
    assert.is_nil(inv.conv1_weight_to_fp16_palettized.uncompressed_reason)
    for _, e in ipairs(mlsh.load(base16):inventory()) do assert.is_nil(e.uncompressed_reason) end
  end)

  it("describes neural-network quantized weights and decodes them", function()
    local nn = dir .. "/q.mlmodel"
    require("mlsh.model.writer").save(F.nn_model({ quantized = true }), nil, nn)
    local inv = by_name(mlsh.load(nn):inventory())
    local e = inv["fc.weights"]
    assert.same({ "quantized", "uint8", "per_tensor", 3, "fp32", "uint8" },
      { e.compression.kind, e.compression.dtype, e.compression.granularity, e.min_spec, e.dtype, e.stored_dtype })
    assert.are.equal(0.5 * 1 - 1, e:values()[1])
  end)
end)

describe("mlsh weights --json", function()
  it("prints {weights: [...]} with the contract's keys and the decompressed statistics", function()
    local s, rc = run("--json " .. q(grouped))
    assert.are.equal(0, rc)
    local j = json.decode(s)
    assert.truthy(j.weights)
    local rows = by_name(j.weights)
    local r = rows.conv1_weight_to_fp16_palettized
    for _, k in ipairs({ "name", "consumers", "dtype", "shape", "storage", "bytes", "compression", "min_spec", "os",
                         "min", "max", "mean", "std", "sparsity" }) do
      assert.truthy(r[k] ~= nil, k)
    end
    assert.same({ "palettized", 4, "per_grouped_channel", 16, false },
      { r.compression.kind, r.compression.nbits, r.compression.granularity, r.compression.group_size, r.compression.per_channel_scale })
    assert.same({ 9, "iOS18", "blob", "fp16" }, { r.min_spec, r.os, r.storage, r.dtype })
    assert.same({ { op = r.consumers[1].op, param = "weight", type = "conv" } }, r.consumers)
    local st = by_name(mlsh.load(grouped):inventory()).conv1_weight_to_fp16_palettized:values():stats()
    assert.same({ st.min, st.max, st.mean, st.std, st.sparsity }, { r.min, r.max, r.mean, r.std, r.sparsity })
    local u = rows.fc2_weight_to_fp16
    assert.same({ kind = "none" }, u.compression)
    assert.are.equal(json.null, u.min_spec)
    assert.truthy(u.uncompressed_reason:find("group size 16", 1, true))
  end)

  it("describes quantized and joint weights", function()
    local rows = by_name(json.decode((run("--json " .. q(int4)))).weights)
    local c = rows.proj_to_fp16_quantized.compression
    assert.same({ "quantized", "int4", true, "per_block", 32 }, { c.kind, c.dtype, c.symmetric, c.granularity, c.block_size })
    rows = by_name(json.decode((run("--json " .. q(joint)))).weights)
    c = rows.fc1_weight_to_fp16_sparsified.compression
    assert.are.equal("joint", c.kind)
    assert.same({ "sparse", "palettized" }, { c.stages[1].kind, c.stages[2].kind })
    assert.are.equal(2, c.stages[2].nbits)
    assert.truthy(math.abs(c.sparsity - 0.5) < 0.01)
    assert.are.equal(json.null, c.n_m)
    assert.truthy(math.abs(rows.fc1_weight_to_fp16_sparsified.sparsity - 0.5) < 0.01)
  end)

  it("skips the statistics with --no-stats", function()
    local rows = by_name(json.decode((run("--json --no-stats " .. q(pal16)))).weights)
    assert.are.equal(json.null, rows.fc1_weight_to_fp16_palettized.mean)
  end)
end)

describe("mlsh weights (text)", function()
  it("prints the table, totals and the flags", function()
    local s, rc = run(q(grouped))
    assert.are.equal(0, rc)
    assert.truthy(s:find("weight%s+consumers%s+dtype%s+shape%s+storage%s+bytes%s+compression%s+needs"))
    assert.truthy(s:find("palettized 4-bit per-grouped-channel 16", 1, true))
    assert.truthy(s:find("iOS18 (9)", 1, true))
    assert.truthy(s:find("left uncompressed in a compressed model:", 1, true))
    assert.truthy(s:find("! fc2_weight_to_fp16: its 100 output channels", 1, true))
  end)

  it("exits 2 on bad usage and 1 on an unreadable model", function()
    local _, rc, e = run("--bogus " .. q(pal16))
    assert.are.equal(2, rc)
    assert.truthy(e:find("unknown option --bogus", 1, true))
    _, rc = run("")
    assert.are.equal(2, rc)
    _, rc, e = run(q(dir .. "/missing.mlpackage"))
    assert.are.equal(1, rc)
    assert.truthy(e:find("missing.mlpackage", 1, true))
  end)
end)
