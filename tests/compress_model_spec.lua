-- compress_model_spec.lua — mlsh.compress on whole models: the forms written for each target, the
-- selection rules, spec-version policy and its errors, reload + decompress = the SNR reported,
-- decompression, comparison, config files, the CLI and the sweep recipe.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local compress = require "mlsh.compress"
local config = require "mlsh.compress.config"
local progress = require "mlsh.compress.progress"
local writer = require "mlsh.model.writer"
local CF = require "compress_fixtures"

local dir = CF.tmpdir()
local BIN = os.getenv("MLSH_BIN") or "./mlsh"
local HOME = os.getenv("MLSH_HOME") or "."

local base = {}
for _, o in ipairs({ "iOS15", "iOS16", "iOS17", "iOS18" }) do
  base[o] = CF.base(string.format("%s/base_%s.mlpackage", dir, o), { opset = o })
end
local gather15 = CF.base(dir .. "/gather15.mlpackage", { opset = "iOS15", gather = true })

local n_out = 0
local function outpath(ext)
  n_out = n_out + 1
  return string.format("%s/out%d.%s", dir, n_out, ext or "mlpackage")
end

local function sh(cmd)
  local p = io.popen(cmd .. "; echo \"rc=$?\"", "r")
  local s = p:read("a")
  p:close()
  local rc = tonumber(s:match("rc=(%d+)%s*$"))
  return s:gsub("rc=%d+%s*$", ""), rc
end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function mlsh_cmd(args, env)
  return sh(string.format("%s MLSH_HOME=%s %s %s 2>%s/stderr", env or "", q(HOME), q(BIN), args, dir))
end
local function last_stderr() local f = io.open(dir .. "/stderr") local s = f:read("a") f:close() return s end

-- Compress, save, reload; returns the reloaded model, the report, and rows by name.
local function roundtrip(src, policy)
  local m = mlsh.load(src)
  local path = outpath()
  local report = compress.save(m, path, policy)
  m:close()
  local rows = {}
  for _, r in ipairs(report.weights) do rows[r.name] = r end
  return mlsh.load(path), report, rows, path
end

local function inv_by_name(m)
  local t = {}
  for _, e in ipairs(m:inventory()) do t[e.name] = e end
  return t
end

local function ops_by_output(m)
  local t = {}
  for _, op in ipairs(m:ops()) do
    for _, o in ipairs(op.outputs) do t[o.name] = op end
  end
  return t
end

-- The SNR a reloaded compressed weight has against the original const, exactly as reported.
local function check_snr(orig_path, m2, rows)
  local orig = inv_by_name(mlsh.load(orig_path))
  local n = 0
  for _, e in ipairs(m2:inventory()) do
    if e.compression then
      local base_name = compress.original_name(e.name)
      local o = orig[base_name]
      assert.truthy(o, e.name)
      local mt = compress.metrics(o:values(), e:values())
      assert.are.equal(rows[base_name].snr_db, mt.snr_db, e.name)
      n = n + 1
    end
  end
  return n
end

describe("compress.model: iOS16 forms", function()
  it("palettizes per tensor into constexpr_lut_to_dense attributes; reloads to the reported SNR", function()
    local m2, report, rows = roundtrip(base.iOS16, { palettize = { nbits = 4 } })
    assert.are.equal(7, m2.spec_version)
    assert.same({ 7, 7 }, { report.spec_before, report.spec_after })
    local ops = ops_by_output(m2)
    local op = ops["fc1_weight_to_fp16_palettized"]
    assert.are.equal("constexpr_lut_to_dense", op.type)
    local attrs = op:attributes()
    assert.truthy(attrs.indices and attrs.indices.blob)
    assert.same({ 96, 32 }, attrs.shape)
    assert.are.equal(0, #op:inputs(), "iOS16 constexpr parameters are attributes")
    -- the consumer now reads the constexpr output
    local lin = ops["linear_0"] or ops["linear_0_cast_fp16"]
    local found = false
    for _, o in ipairs(m2:ops()) do
      for _, e in ipairs(o:inputs()) do
        if e.name == "fc1_weight_to_fp16_palettized" then found = true end
        assert.are_not.equal("fc1_weight_to_fp16", e.name, "no op reads the old const")
      end
    end
    assert.truthy(found or lin)
    assert.are.equal(4, check_snr(base.iOS16, m2, rows))
    assert.are.equal("compressed", rows.conv1_weight_to_fp16.status)
    assert.are.equal("ineligible", rows.head_weight_to_fp16.status)
    assert.truthy(rows.head_weight_to_fp16.reason:find("below the weight threshold (1000 <= 2048", 1, true))
    assert.truthy(ops["head_weight_to_fp16"] and ops["head_weight_to_fp16"].type == "const", "a weight under the threshold stays a const")
    assert.truthy(rows.conv1_bias_to_fp16.reason:find("rank 1", 1, true))
    assert.truthy(math.abs(rows.fc1_weight_to_fp16.snr_db - 20) < 2, "4-bit k-means of a Gaussian is ~20 dB")
    assert.are.equal(4, report.totals.compressed)
    assert.truthy(report.totals.bytes_after < report.totals.bytes_before / 2)
  end)

  it("quantizes int8 per channel (matmul y along its last axis) into constexpr_affine_dequantize", function()
    local m2, _, rows = roundtrip(base.iOS16, { quantize = { dtype = "int8" } })
    local ops = ops_by_output(m2)
    local op = ops["proj_to_fp16_quantized"]
    assert.are.equal("constexpr_affine_dequantize", op.type)
    assert.are.equal(1, op:attr("axis"), "matmul y without transpose: output channels are the last axis")
    local inv = inv_by_name(m2)
    local d = inv["proj_to_fp16_quantized"].compression
    assert.same({ "quantized", "int8", "per_channel", true, 7 }, { d.kind, d.dtype, d.granularity, d.symmetric, d.min_spec })
    local sc
    for _, w in ipairs(m2:weights()) do
      if w.op == "proj_to_fp16_quantized" and w.param == "scale" then sc = w end
    end
    assert.are.equal(40, sc.count)
    assert.are.equal(4, check_snr(base.iOS16, m2, rows))
    assert.truthy(rows.fc1_weight_to_fp16.snr_db > 38)
  end)

  it("prunes into constexpr_sparse_to_dense with a packed mask", function()
    local m2, _, rows = roundtrip(base.iOS16, { prune = { sparsity = 0.5 } })
    local inv = inv_by_name(m2)
    local e = inv["fc2_weight_to_fp16_sparsified"]
    assert.are.equal("sparse", e.compression.kind)
    assert.truthy(math.abs(e.compression.sparsity - 0.5) < 0.01)
    assert.truthy(math.abs(e:values():stats().sparsity - 0.5) < 0.01)
    assert.are.equal(4, check_snr(base.iOS16, m2, rows))
  end)

  it("writes n:m pruning that reads back as n:m", function()
    local m2 = roundtrip(base.iOS16, { prune = { n_m = { 2, 4 } } })
    local e = inv_by_name(m2)["fc1_weight_to_fp16_sparsified"]
    assert.same({ 2, 4, 1 }, { e.compression.n_m.n, e.compression.n_m.m, e.compression.n_m.dim })
  end)

  it("keeps iOS17 programs at spec 8 with the iOS16 forms", function()
    local m2, report = roundtrip(base.iOS17, { palettize = { nbits = 6 } })
    assert.are.equal(8, m2.spec_version)
    assert.are.equal(8, report.spec_after)
    assert.are.equal(7, inv_by_name(m2)["fc1_weight_to_fp16_palettized"].compression.min_spec)
  end)

  it("raises an iOS15 program only to spec 7, relabelling its opset", function()
    local m2, report = roundtrip(base.iOS15, { quantize = { dtype = "int8" } })
    assert.are.equal(7, m2.spec_version)
    assert.same({ 6, 7 }, { report.spec_before, report.spec_after })
    assert.are.equal("CoreML6", m2:functions()[1].opset)
    assert.truthy(table.concat(report.notes, "\n"):find("CoreML5 -> CoreML6", 1, true))
  end)

  it("writes 3-bit unique LUTs as 4-bit ones for iOS16", function()
    local B = require "mlsh.builder"
    local p = B.program { opset = "iOS16", precision = "fp16" }
    local f = p:func("main")
    local x = f:input("x", "fp32", { 1, 64 })
    local vals = {}
    for i = 1, 64 * 64 do vals[i] = ((i * 7) % 5 - 2) * 0.25 end
    f:output("y", B.layers.linear(f, x, { name = "fc", out = 64, weight = B.array(vals, { 64, 64 }) }))
    local src = p:save(outpath())
    local m2, _, rows = roundtrip(src, { palettize = { mode = "unique" } })
    local e = inv_by_name(m2)["fc_weight_to_fp16_palettized"]
    assert.are.equal(4, e.compression.nbits)
    assert.are.equal(math.huge, rows.fc_weight_to_fp16.snr_db, "unique mode is lossless")
    local a = e:values()
    for i = 1, 64 do assert.are.equal(vals[i], a[i]) end
  end)
end)

describe("compress.model: iOS18 forms", function()
  it("palettizes per grouped channel: rank+2 LUTs, uint4 indices as inputs; skips groups that do not fit", function()
    local m2, report, rows = roundtrip(base.iOS18, { palettize = { nbits = 4, granularity = "per_grouped_channel", group_size = 16 } })
    assert.are.equal(9, report.spec_after)
    local op = ops_by_output(m2)["conv1_weight_to_fp16_palettized"]
    local by = {}
    for _, e in ipairs(op:inputs()) do by[e.param] = e end
    assert.same({ 2, 1, 1, 1, 16, 1 }, by.lut.shape)
    assert.are.equal("uint4", by.indices.dtype)
    assert.are.equal("skipped", rows.fc2_weight_to_fp16.status)
    assert.truthy(rows.fc2_weight_to_fp16.reason:find("100 output channels are not a multiple of the group size 16", 1, true))
    assert.are.equal("skipped", rows.proj_to_fp16.status, "matmul y groups run along its 40 output channels")
    local inv = inv_by_name(m2)
    assert.truthy(inv.fc2_weight_to_fp16.uncompressed_reason:find("group size 16", 1, true), "flagged by the inventory")
    assert.are.equal(2, check_snr(base.iOS18, m2, rows))
  end)

  it("quantizes int4 per block into constexpr_blockwise_shift_scale", function()
    local m2, _, rows = roundtrip(base.iOS18, { quantize = { dtype = "int4", granularity = "per_block", block_size = 32 } })
    local e = inv_by_name(m2)["proj_to_fp16_quantized"]
    assert.same({ "quantized", "int4", "per_block", 32, 9 },
      { e.compression.kind, e.compression.dtype, e.compression.granularity, e.compression.block_size, e.compression.min_spec })
    local by = {}
    for _, x in ipairs(ops_by_output(m2)["proj_to_fp16_quantized"]:inputs()) do by[x.param] = x end
    assert.same({ 3, 40 }, by.scale.shape, "blocks of 32 along the 96 input channels of matmul y")
    assert.is_nil(by.offset, "symmetric int4 has no offset")
    assert.are.equal("skipped", rows.conv1_weight_to_fp16.status, "16 input channels: no block of 32 fits")
    assert.are.equal(2, check_snr(base.iOS18, m2, rows))
  end)

  it("affine uint8 per tensor carries an offset", function()
    local m2, _, rows = roundtrip(base.iOS18, { quantize = { dtype = "uint8", symmetric = false, granularity = "per_tensor" } })
    local e = inv_by_name(m2)["fc1_weight_to_fp16_quantized"]
    assert.same({ "uint8", "per_tensor", false }, { e.compression.dtype, e.compression.granularity, e.compression.symmetric })
    assert.are.equal(4, check_snr(base.iOS18, m2, rows))
  end)

  it("prunes with a uint1 mask tensor", function()
    local m2, _, rows = roundtrip(base.iOS18, { prune = { sparsity = 0.75 } })
    local by = {}
    for _, x in ipairs(ops_by_output(m2)["fc1_weight_to_fp16_sparsified"]:inputs()) do by[x.param] = x end
    assert.same({ "uint1", 96, 32 }, { by.mask.dtype, by.mask.shape[1], by.mask.shape[2] })
    assert.are.equal(4, check_snr(base.iOS18, m2, rows))
  end)

  it("writes joint chains: lut_to_sparse and sparse_blockwise_shift_scale into sparse_to_dense", function()
    local m2, _, rows = roundtrip(base.iOS18, { prune = { sparsity = 0.5 }, palettize = { nbits = 4 } })
    local e = inv_by_name(m2)["fc1_weight_to_fp16_sparsified"]
    assert.same({ "constexpr_lut_to_sparse", "constexpr_sparse_to_dense" }, e.compression.chain)
    assert.are.equal("joint", e.compression.kind)
    assert.are.equal(4, check_snr(base.iOS18, m2, rows))
    local op = ops_by_output(m2)["fc1_weight_to_fp16_sparsified_nonzero_data_0_palettized_1"]
    assert.are.equal("fc1_weight_to_fp16_sparsified_nonzero_data_0_palettized", op.name)

    local m3, _, rows3 = roundtrip(base.iOS18, { prune = { sparsity = 0.5 }, quantize = { dtype = "int8" } })
    local e3 = inv_by_name(m3)["fc1_weight_to_fp16_sparsified"]
    assert.same({ "constexpr_sparse_blockwise_shift_scale", "constexpr_sparse_to_dense" }, e3.compression.chain)
    assert.are.equal(4, check_snr(base.iOS18, m3, rows3))
  end)

  it("palettizes with a per-channel scale (lut_to_dense -> blockwise_shift_scale) and 3 bits", function()
    local m2, _, rows = roundtrip(base.iOS18, { palettize = { nbits = 3, per_channel_scale = true } })
    local e = inv_by_name(m2)["fc1_weight_to_fp16_palettized_pcs"]
    assert.same({ "palettized", 3, true }, { e.compression.kind, e.compression.nbits, e.compression.per_channel_scale })
    assert.are.equal(4, check_snr(base.iOS18, m2, rows))
  end)
end)

describe("compress.model: errors and settings", function()
  local function usage_err(src, policy)
    local m = mlsh.load(src)
    local ok, e = pcall(compress.model, m, policy)
    m:close()
    assert.is_false(ok)
    return type(e) == "table" and e.msg or tostring(e)
  end

  it("refuses iOS18-only modes for older programs, naming the target", function()
    assert.are.equal("per-block quantization needs iOS18 (spec 9); the model is spec 7: re-convert with minimum_deployment_target=iOS18",
      usage_err(base.iOS16, { quantize = { dtype = "int8", granularity = "per_block", block_size = 32 } }))
    assert.truthy(usage_err(base.iOS17, { quantize = { dtype = "int4" } }):find("^int4 quantization needs iOS18 %(spec 9%); the model is spec 8"))
    assert.truthy(usage_err(base.iOS16, { palettize = { nbits = 4, granularity = "per_grouped_channel" } })
      :find("per-grouped-channel palettization needs iOS18", 1, true))
    assert.truthy(usage_err(base.iOS16, { palettize = { nbits = 3 } }):find("3-bit palettization", 1, true))
    assert.truthy(usage_err(base.iOS16, { prune = { sparsity = 0.5 }, palettize = { nbits = 4 } }):find("joint compression", 1, true))
    assert.truthy(usage_err(base.iOS16, { op_type = { linear = { quantize = { dtype = "uint4" } } } })
      :find("uint4 quantization (op_type linear) needs iOS18", 1, true))
  end)

  it("refuses bad settings", function()
    assert.truthy(usage_err(base.iOS16, { palettize = { nbits = 5 } }):find("nbits must be one of 1, 2, 3, 4, 6, 8 (got 5)", 1, true))
    assert.truthy(usage_err(base.iOS16, { palettize = { nbits = 4, mode = "unique" } }):find("unique picks nbits itself", 1, true))
    assert.truthy(usage_err(base.iOS16, { quantize = { dtype = "int16" } }):find("int8, uint8, int4 or uint4", 1, true))
    assert.truthy(usage_err(base.iOS16, { prune = { sparsity = 1.5 } }):find("sparsity must be a number in [0, 1]", 1, true))
    assert.truthy(usage_err(base.iOS16, { prune = { sparsity = 0.5, n_m = { 2, 4 } } }):find("exactly one of", 1, true))
    assert.truthy(usage_err(base.iOS16, { palettize = { nbits = 4, colour = 1 } }):find("unknown palettize option 'colour'", 1, true))
    assert.truthy(usage_err(base.iOS16, {}):find("nothing to do", 1, true))
    assert.truthy(usage_err(base.iOS16, { op_type = { const = { palettize = {} } } }):find("op_type 'const' is not allowed", 1, true))
  end)

  it("refuses models that are not iOS16-capable ML programs", function()
    assert.truthy(usage_err(gather15, { palettize = { nbits = 4 } })
      :find("compression ops need iOS16 (spec 7); the model is spec 6 and uses gather, whose iOS16 version differs", 1, true))
    local F = require "fixtures"
    local nn = outpath("mlmodel")
    writer.save(F.nn_model(), nil, nn)
    assert.truthy(usage_err(nn, { palettize = { nbits = 4 } }):find("compression needs an ML program", 1, true))
  end)

  it("applies op_name > op_type > global, and false leaves a weight alone", function()
    local m2, _, rows = roundtrip(base.iOS16, {
      palettize = { nbits = 4 },
      op_type = { linear = { palettize = { nbits = 6 } }, matmul = false },
      op_name = { fc2_weight_to_fp16 = { quantize = { dtype = "int8" } } },
    })
    local inv = inv_by_name(m2)
    assert.are.equal(4, inv.conv1_weight_to_fp16_palettized.compression.nbits)
    assert.are.equal(6, inv.fc1_weight_to_fp16_palettized.compression.nbits)
    assert.are.equal("quantized", inv.fc2_weight_to_fp16_quantized.compression.kind)
    assert.are.equal("excluded", rows.proj_to_fp16.status)
    assert.are.equal("op_type", rows.fc1_weight_to_fp16.source)
    assert.is_nil(inv.proj_to_fp16.compression)
  end)

  it("honours the weight threshold (strictly greater than it)", function()
    local _, _, rows = roundtrip(base.iOS16, { palettize = { nbits = 4 }, weight_threshold = 3840 })
    assert.are.equal("ineligible", rows.proj_to_fp16.status, "3840 elements is not more than 3840")
    assert.are.equal("compressed", rows.fc2_weight_to_fp16.status)
    local _, _, rows2 = roundtrip(base.iOS16, { palettize = { nbits = 4 }, weight_threshold = 500 })
    assert.are.equal("compressed", rows2.head_weight_to_fp16.status)
  end)

  it("loads config files without globals and refuses bad ones", function()
    local path = dir .. "/policy.lua"
    local f = io.open(path, "w")
    f:write("return { op_type = { conv = { palettize = { nbits = 2 } } }, weight_threshold = 1000 }\n")
    f:close()
    local p = config.load_file(path)
    assert.are.equal(1000, p.weight_threshold)
    f = io.open(path, "w")
    f:write("os.exit(3)\n")
    f:close()
    local ok, e = pcall(config.load_file, path)
    assert.is_false(ok)
    assert.truthy(tostring(e):find("config", 1, true))
  end)
end)

describe("decompression and comparison", function()
  it("decompress restores dense consts with the original names, equal to the decompressed values", function()
    local m2, _, _, cpath = roundtrip(base.iOS18, { prune = { sparsity = 0.5 }, palettize = { nbits = 4 } })
    local before = {}
    for _, e in ipairs(m2:inventory()) do before[compress.original_name(e.name) or e.name] = e:values() end
    local spec, rb, rep = compress.decompress(m2)
    local dpath = outpath()
    writer.save(spec, rb, dpath)
    local d = mlsh.load(dpath)
    assert.are.equal(9, d.spec_version)
    local n = 0
    for _, e in ipairs(d:inventory()) do
      assert.is_nil(e.compression)
      local a, b = e:values(), before[e.name]
      assert.truthy(b, e.name)
      for i = 1, #a do assert.are.equal(b[i], a[i]) end
      n = n + 1
    end
    assert.are.equal(9, n)
    for _, op in ipairs(d:ops()) do assert.is_nil(op.type:match("^constexpr_"), op.type) end
    assert.are.equal(4, #rep.weights)
    assert.truthy(cpath)
  end)

  it("compare sorts worst first and gives the playbook under the floor", function()
    local m2 = roundtrip(base.iOS16, { palettize = { nbits = 2 }, op_type = { matmul = { quantize = { dtype = "int8" } } } })
    local rows, extra = compress.compare(mlsh.load(base.iOS16), m2, { min_snr = 30 })
    assert.are.equal(0, #extra.unmatched)
    for i = 2, #rows do assert.truthy(rows[i - 1].snr_db <= rows[i].snr_db) end
    local worst = rows[1]
    assert.truthy(worst.below)
    assert.truthy(table.concat(worst.advice, "; "):find("more bits: --palettize 3", 1, true))
    assert.truthy(table.concat(worst.advice, "; "):find("grouped channels", 1, true))
    local proj
    for _, r in ipairs(rows) do if r.original == "proj_to_fp16" then proj = r end end
    assert.is_false(proj.below)
    assert.are.equal(math.huge, rows[#rows].snr_db)
  end)
end)

describe("mlsh compress / decompress / compare (CLI)", function()
  it("compresses, prints the table, and exits 0", function()
    local out = outpath()
    local s, rc = mlsh_cmd(string.format("compress %s -o %s --palettize 4", q(base.iOS16), q(out)))
    assert.are.equal(0, rc, last_stderr())
    assert.truthy(s:find("fc1_weight_to_fp16", 1, true))
    assert.truthy(s:find("4 of 9 weights compressed", 1, true), s)
    assert.is_nil(last_stderr():find("\r", 1, true), "no progress bar when stderr is not a terminal")
    local m2 = mlsh.load(out)
    assert.truthy(inv_by_name(m2)["fc1_weight_to_fp16_palettized"])
  end)

  it("--json prints one object with the report keys", function()
    local out = outpath()
    local s, rc = mlsh_cmd(string.format("compress %s -o %s --quantize int4 --per-block 32 --json", q(base.iOS18), q(out)))
    assert.are.equal(0, rc, last_stderr())
    local j = mlsh.json.decode(s)
    assert.are.equal(9, j.spec_after)
    local row
    for _, r in ipairs(j.weights) do if r.name == "proj_to_fp16" then row = r end end
    for _, k in ipairs({ "status", "setting", "form", "bytes_before", "bytes_after", "snr_db", "op_types" }) do
      assert.truthy(row[k] ~= nil, k)
    end
    assert.are.equal("iOS18", row.form)
  end)

  it("exits 2 for bad usage and for modes the target cannot hold, 1 for unreadable models", function()
    local out = outpath()
    local _, rc = mlsh_cmd(string.format("compress %s -o %s --palettize 5", q(base.iOS16), q(out)))
    assert.are.equal(2, rc)
    assert.truthy(last_stderr():find("nbits must be one of 1, 2, 3, 4, 6, 8", 1, true))
    _, rc = mlsh_cmd(string.format("compress %s -o %s --quantize int8 --per-block 32", q(base.iOS16), q(out)))
    assert.are.equal(2, rc)
    assert.truthy(last_stderr():find("per-block quantization needs iOS18 (spec 9); the model is spec 7: re-convert with minimum_deployment_target=iOS18", 1, true))
    _, rc = mlsh_cmd(string.format("compress %s -o %s --palettize 4 --bogus", q(base.iOS16), q(out)))
    assert.are.equal(2, rc)
    assert.truthy(last_stderr():find("unknown option --bogus", 1, true))
    _, rc = mlsh_cmd(string.format("compress %s --palettize 4", q(base.iOS16)))
    assert.are.equal(2, rc)
    _, rc = mlsh_cmd(string.format("compress %s/nothing.mlpackage -o %s --palettize 4", q(dir), q(out)))
    assert.are.equal(1, rc)
    _, rc = mlsh_cmd(string.format("compress %s -o %s --prune 0.5 --n-m 1:4", q(base.iOS16), q(out)))
    assert.are.equal(2, rc)
    assert.truthy(last_stderr():find("disagree", 1, true))
  end)

  it("never replaces its input without --in-place", function()
    local src = outpath()
    os.execute("cp -r " .. q(base.iOS16) .. " " .. q(src))
    local _, rc = mlsh_cmd(string.format("compress %s -o %s --palettize 4", q(src), q(src)))
    assert.are.equal(1, rc)
    assert.truthy(last_stderr():find("refusing to replace the input", 1, true))
    assert.is_nil(inv_by_name(mlsh.load(src))["fc1_weight_to_fp16"].compression)
    _, rc = mlsh_cmd(string.format("compress %s --in-place --palettize 4 --quiet", q(src)))
    assert.are.equal(0, rc, last_stderr())
    assert.truthy(inv_by_name(mlsh.load(src))["fc1_weight_to_fp16_palettized"])
  end)

  it("a quiet run (no metrics summed) writes the same bytes as a reporting one; the API leaves SNR out", function()
    local bytes = require("fixtures").read
    for _, c in ipairs({ { "--palettize 4", "iOS16" }, { "--quantize int8", "iOS16" }, { "--prune 0.5", "iOS16" },
                         { "--quantize int4 --per-block 32", "iOS18" }, { "--quantize uint8 --affine", "iOS16" } }) do
      local mode, src = c[1], base[c[2]]
      local a, b = outpath(), outpath()
      local _, rc = mlsh_cmd(string.format("compress %s -o %s %s --quiet", q(src), q(a), mode))
      assert.are.equal(0, rc, last_stderr())
      local s
      s, rc = mlsh_cmd(string.format("compress %s -o %s %s --json", q(src), q(b), mode))
      assert.are.equal(0, rc, last_stderr())
      assert.is_number(mlsh.json.decode(s).totals.snr_db)
      for _, f in ipairs({ "/Data/com.apple.CoreML/weights/weight.bin", "/Data/com.apple.CoreML/model.mlmodel" }) do
        assert.are.equal(bytes(b .. f), bytes(a .. f), mode .. ": " .. f)
      end
    end
    local _, _, report = compress.model(mlsh.load(base.iOS16), { quantize = { dtype = "int8" }, metrics = false })
    assert.is_nil(report.totals.snr_db)
    for _, r in ipairs(report.weights) do
      if r.status == "compressed" then assert.is_nil(r.snr_db) assert.is_number(r.bytes_after) end
    end
  end)

  it("takes mixed bits from a config file", function()
    local cfg = dir .. "/mixed.lua"
    local f = io.open(cfg, "w")
    f:write("return { op_type = { conv = { palettize = { nbits = 2 } }, linear = { quantize = { dtype = 'int8' } } } }\n")
    f:close()
    local out = outpath()
    local _, rc = mlsh_cmd(string.format("compress %s -o %s --config %s --quiet", q(base.iOS16), q(out), q(cfg)))
    assert.are.equal(0, rc, last_stderr())
    local inv = inv_by_name(mlsh.load(out))
    assert.are.equal(2, inv.conv1_weight_to_fp16_palettized.compression.nbits)
    assert.are.equal("quantized", inv.fc1_weight_to_fp16_quantized.compression.kind)
    assert.is_nil(inv.proj_to_fp16.compression, "matmul has no setting in the file")
  end)

  it("decompress writes dense weights; compare exits 1 under the floor with advice, 0 above", function()
    local out = outpath()
    local _, rc = mlsh_cmd(string.format("compress %s -o %s --palettize 2 --quiet", q(base.iOS16), q(out)))
    assert.are.equal(0, rc)
    local s
    s, rc = mlsh_cmd(string.format("compare %s %s --min-snr 30", q(base.iOS16), q(out)))
    assert.are.equal(1, rc)
    assert.truthy(s:find("under 30 dB", 1, true))
    assert.truthy(s:find("more bits: --palettize 3", 1, true))
    s, rc = mlsh_cmd(string.format("compare %s %s --min-snr 5 --json", q(base.iOS16), q(out)))
    assert.are.equal(0, rc)
    local j = mlsh.json.decode(s)
    assert.are.equal(0, j.below)
    assert.are.equal(mlsh.json.null, j.weights[#j.weights].snr_db, "identical weights (inf dB) come last, as null")
    assert.truthy(j.weights[1].snr_db <= j.weights[2].snr_db)
    local dense = outpath()
    _, rc = mlsh_cmd(string.format("decompress %s -o %s --quiet", q(out), q(dense)))
    assert.are.equal(0, rc, last_stderr())
    for _, e in ipairs(mlsh.load(dense):inventory()) do assert.is_nil(e.compression) end
    _, rc = mlsh_cmd(string.format("compare %s", q(base.iOS16)))
    assert.are.equal(2, rc)
    _, rc = mlsh_cmd(string.format("decompress %s", q(out)))
    assert.are.equal(2, rc)
  end)

  it("the sweep recipe writes the smallest per-layer mix meeting the floor", function()
    local out = outpath()
    local s, rc = mlsh_cmd(string.format("%s/recipes/compress-sweep.lua %s --min-snr 30 -o %s", q(HOME), q(base.iOS18), q(out)))
    assert.are.equal(0, rc, last_stderr())
    assert.truthy(s:find("per-layer mix (winner)", 1, true))
    assert.truthy(s:find("all palettize 4-bit", 1, true))
    local rows = compress.compare(mlsh.load(base.iOS18), mlsh.load(out), { min_snr = 30 })
    local compressed = 0
    for _, r in ipairs(rows) do
      assert.is_false(r.below, r.name)
      if r.kind ~= "none" then compressed = compressed + 1 end
    end
    assert.are.equal(4, compressed)
    local _, rc2 = mlsh_cmd(string.format("%s/recipes/compress-sweep.lua %s -o %s", q(HOME), q(base.iOS18), q(out)))
    assert.are.equal(2, rc2)
  end)
end)

describe("progress bar", function()
  it("draws only on a terminal without NO_COLOR and not when quiet", function()
    local env = function(t) return function(k) return t[k] end end
    assert.is_true(progress.enabled(false, env {}, true))
    assert.is_false(progress.enabled(false, env {}, false))
    assert.is_false(progress.enabled(false, env { NO_COLOR = "1" }, true))
    assert.is_false(progress.enabled(true, env {}, true))
    assert.is_false(progress.enabled(false, env { TERM = "dumb" }, true))
  end)

  it("renders a bar with the count and the weight", function()
    local chunks = {}
    local sink = { write = function(_, ...) for _, s in ipairs({ ... }) do chunks[#chunks + 1] = s end end, flush = function() end }
    local bar = progress.new { total = 4, enabled = true, out = sink }
    bar:update(2, "fc1_weight")
    bar:done()
    local s = table.concat(chunks)
    assert.truthy(s:find("[" .. string.rep("#", 14) .. string.rep(".", 14) .. "]  50% 2/4 fc1_weight", 1, true), s)
    assert.truthy(s:sub(-4) == "\r\27[K")
    assert.are.equal("[" .. string.rep("#", 28) .. "] 100% 3/3 x", progress.render(3, 3, "x"))
  end)

  it("appears on a terminal (a pty via script(1)) and not with NO_COLOR", function()
    local _, has = sh("command -v script >/dev/null")
    if has ~= 0 then return end -- util-linux script(1) absent: nothing to drive a pty with
    local function under_pty(env)
      local out = outpath()
      local cmd = string.format("%s MLSH_HOME=%s %s compress %s -o %s --palettize 4", env, q(HOME), q(BIN), q(base.iOS16), q(out))
      return (sh("script -qec " .. q(cmd) .. " /dev/null"))
    end
    local s = under_pty("")
    assert.truthy(s:find("\r\27[K[", 1, true), "a bar is drawn on a terminal")
    assert.truthy(s:find("4/4", 1, true))
    assert.is_nil(under_pty("NO_COLOR=1"):find("\r\27[K[", 1, true))
  end)

  it("is used by compress.model through a callback", function()
    local calls = {}
    local m = mlsh.load(base.iOS16)
    compress.model(m, { palettize = { nbits = 4 }, progress = function(i, n, name) calls[#calls + 1] = { i, n, name } end })
    assert.are.equal(8, #calls)
    assert.same({ 4, 4 }, { calls[#calls][1], calls[#calls][2] })
  end)
end)

describe("compress per-tensor API", function()
  it("re-exports the kernels and runs a setting on one tensor", function()
    assert.are.equal(core.compress.palettize, compress.palettize)
    local a = core.compress.randn({ 64, 64 }, { seed = 3, std = 0.1, weight_dtype = "fp16" })
    local r, kind = compress.tensor(a, { quantize = { dtype = "int8" } }, { weight_dtype = "fp16" })
    assert.are.equal("quantize", kind)
    assert.are.equal(64, #r.scale)
    local ok, e = pcall(compress.tensor, a, { palettize = { nbits = 7 } })
    assert.is_false(ok)
    assert.truthy(tostring(e):find("nbits", 1, true))
  end)
end)
