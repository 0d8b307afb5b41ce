-- mlsh diff: exit codes, every section on built pairs (a model against its palettized copy, fp16
-- against fp32, an ONNX model against an edited copy), golden output in every format, errors.
-- Pairs are built here with mlsh's builder and `mlsh compress`; expected values come from the
-- builder's own parameters (what each variant changes), not from the diff code.
-- MLSH_UPDATE_GOLDEN=1 rewrites tests/golden/diff/* from the current output.
local json = require "mlsh.json"
local F = require "fixtures"
local CF = require "compress_fixtures"
local OB = require "onnx_builder"
local B = require "mlsh.builder"

local HOME = os.getenv("MLSH_HOME") or "."
local GOLDEN = HOME .. "/tests/golden/diff/"

local dir, base, pal, fp32, onnx_a, onnx_b

local function build_fp(path, precision)
  local L = B.layers
  local p = B.program { opset = "iOS16", precision = precision, seed = 3 }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 32 })
  local y = L.linear(f, x, { name = "fc1", out = 64 })
  y = L.relu(f, y)
  y = L.linear(f, y, { name = "fc2", out = 8 })
  f:output("y", y)
  p:save(path)
  return path
end

local function build_onnx(path, variant)
  local b = OB.model { opset = 17 }
  b:input("x", "FLOAT", { 1, 16 })
  local w = {}
  for i = 1, 16 * 16 do w[i] = ((i * 37) % 17 - 8) / 16 end
  if variant == "b" then w[1] = w[1] + 0.5 end
  b:init("w", "FLOAT", { 16, 16 }, w)
  b:node("MatMul", { "x", "w" }, { "h" }, nil, { name = "mm" })
  if variant == "b" then
    b:node("Erf", { "h" }, { "e" }, nil, { name = "erf" })
    b:node("Relu", { "e" }, { "y" }, nil, { name = "relu" })
  else
    b:node("Relu", { "h" }, { "y" }, nil, { name = "relu" })
  end
  b:output("y", "FLOAT", { 1, 16 })
  return b:save(path)
end

local function run(args) return F.run("diff " .. args) end

-- Replace the temp folder in output with a fixed marker so goldens do not depend on it.
local function normal(s) return (s:gsub(dir:gsub("%p", "%%%0"), "<dir>")) end

local function golden(name, text)
  local path = GOLDEN .. name
  text = normal(text)
  if os.getenv("MLSH_UPDATE_GOLDEN") == "1" then
    assert(require("mlsh.core").fs.mkdir_p(GOLDEN))
    F.write(path, text)
  end
  local f = io.open(path, "rb")
  assert(f, "missing golden " .. path .. " (run with MLSH_UPDATE_GOLDEN=1)")
  local want = f:read("a")
  f:close()
  assert.are.equal(want, text)
end

describe("mlsh diff", function()
  setup(function()
    dir = F.tmpdir()
    base = CF.base(dir .. "/base.mlpackage")
    pal = dir .. "/pal.mlpackage"
    local _, err, code = F.run("compress " .. F.q(base) .. " -o " .. F.q(pal) .. " --palettize 4 --quiet")
    assert(code == 0, err)
    fp32 = build_fp(dir .. "/fp32.mlpackage", "fp32")
    build_fp(dir .. "/fp16.mlpackage", "fp16")
    onnx_a = build_onnx(dir .. "/a.onnx", "a")
    onnx_b = build_onnx(dir .. "/b.onnx", "b")
  end)
  teardown(function() if dir then require("mlsh.core").fs.remove_tree(dir) end end)

  describe("exit status", function()
    it("is 0 for a model against itself, and against its zipped container", function()
      local out, _, code = run(F.q(base) .. " " .. F.q(base))
      assert.equal(0, code)
      assert.matches("no differences", out)
    end)
    it("is 1 when the models differ", function()
      local _, _, code = run(F.q(base) .. " " .. F.q(pal))
      assert.equal(1, code)
    end)
    it("is 0 when every differing section is ignored", function()
      local out, _, code = run("--ignore histogram,weights,required_spec,findings,placement " .. F.q(base) .. " " .. F.q(pal))
      assert.equal(0, code, out)
      assert.matches("ignored", out)
    end)
    it("is 2 on errors, with one line naming the file", function()
      local cases = {
        { F.q(base) .. " " .. F.q(dir .. "/missing.mlpackage"), "missing.mlpackage" },
        { F.q(base), "expected two models" },
        { "--format xml " .. F.q(base) .. " " .. F.q(base), "unknown %-%-format 'xml'" },
        { "--ignore nope " .. F.q(base) .. " " .. F.q(base), "unknown section 'nope'" },
        { "--bogus " .. F.q(base) .. " " .. F.q(base), "unknown option %-%-bogus" },
        { F.q(base) .. " " .. F.q(onnx_a), "one is ONNX and the other Core ML" },
        { "--outputs " .. F.q(onnx_a) .. " " .. F.q(onnx_b), "ONNX models are not run" },
        { "--outputs --random x " .. F.q(base) .. " " .. F.q(base), "%-%-random takes an integer" },
      }
      for _, c in ipairs(cases) do
        local out, err, code = run(c[1])
        assert.equal(2, code, c[1])
        assert.equal("", out)
        assert.matches(c[2], err)
      end
    end)
  end)

  describe("a model against its 4-bit palettized copy", function()
    local r
    setup(function()
      local out, _, code = run("--format json " .. F.q(base) .. " " .. F.q(pal))
      assert.equal(1, code)
      r = json.decode(out)
    end)
    it("reports the const -> constexpr_lut_to_dense trade in the histogram", function()
      local h = {}
      for _, it in ipairs(r.sections.histogram.items) do h[it.type] = it end
      -- compress's default threshold is 2048 elements: conv1 (4608), fc1 (3072), proj (3840), fc2 (4000)
      assert.equal(4, h.constexpr_lut_to_dense.after)
      assert.equal(0, h.constexpr_lut_to_dense.before)
      assert.equal(-4, h.const.delta)
    end)
    it("aligns every compute op by name, none changed", function()
      local ops = r.sections.ops
      assert.equal(0, #ops.added + #ops.removed + #ops.changed)
      assert.is_true(ops.aligned_by_name > 0)
    end)
    it("lists the four palettized weights with form, bytes and an SNR a 4-bit LUT gives", function()
      local w = r.sections.weights
      assert.equal(4, #w.changed)
      for _, c in ipairs(w.changed) do
        assert.equal("none", c.compression_before)
        assert.matches("^palettized 4%-bit", c.compression_after)
        assert.is_true(c.bytes_after < c.bytes_before)
        -- 16 levels over a Gaussian: between 15 and 30 dB
        assert.is_true(c.snr_db > 15 and c.snr_db < 30, tostring(c.snr_db))
      end
      assert.equal(0, #w.added + #w.removed)
    end)
    it("names the new required-spec reason (constexpr_lut_to_dense is iOS16)", function()
      local rs = r.sections.required_spec
      local found = false
      for _, x in ipairs(rs.appeared) do if x.what:match("constexpr_lut_to_dense") then found = true end end
      assert.is_true(found)
    end)
    it("notes the rule findings that appear", function()
      assert.is_true(r.sections.findings.changes >= 0)
      assert.equal(#r.sections.findings.appeared + #r.sections.findings.gone, r.sections.findings.changes)
    end)
  end)

  describe("--outputs", function()
    local SF = require "surgery_fixtures"
    -- SNR of b against a over two .npy files, computed here from `mlsh run`'s own outputs
    local function snr(a, b)
      local x, y = SF.npy_read(a).data, SF.npy_read(b).data
      local s, e = 0, 0
      for i = 1, #x do s, e = s + x[i] * x[i], e + (x[i] - y[i]) ^ 2 end
      return 10 * math.log(s / e, 10)
    end

    it("is 0 for a model against itself: every output identical", function()
      local out, err, code = run("--outputs --format json " .. F.q(fp32) .. " " .. F.q(fp32))
      assert.equal(0, code, err)
      local o = json.decode(out).sections.outputs
      assert.equal(0, o.changes)
      assert.equal("y", o.items[1].name)
      assert.equal("inf", o.items[1].snr_db)
    end)

    it("gives the output SNR of fp16 against fp32 on shared inputs, as two mlsh runs measure it", function()
      local fp16 = dir .. "/fp16.mlpackage"
      local out, err, code = run("--outputs --random 5 --format json " .. F.q(fp32) .. " " .. F.q(fp16))
      assert.equal(1, code, err)
      local o = json.decode(out).sections.outputs
      assert.equal(1, o.changes)
      for _, p in ipairs({ { fp32, "/o32" }, { fp16, "/o16" } }) do
        local _, rerr, rcode = F.run("run " .. F.q(p[1]) .. " --random 5 -o " .. F.q(dir .. p[2]))
        assert.equal(0, rcode, rerr)
      end
      local want = snr(dir .. "/o32/y.npy", dir .. "/o16/y.npy")
      assert.is_true(want > 20 and want < 120, tostring(want))
      assert.is_true(math.abs(o.items[1].snr_db - want) < 1e-6, o.items[1].snr_db .. " vs " .. want)
      local text = run("--outputs --random 5 " .. F.q(fp32) .. " " .. F.q(fp16))
      assert.matches("Outputs on shared inputs", text)
      assert.matches("~ y: SNR %d+%.%d%d dB", text)
    end)
  end)

  describe("fp16 against fp32", function()
    local r
    setup(function()
      -- tiny fixtures: the fp32 rule's moves are the first stage's (--static)
      local out = run("--static --format json " .. F.q(dir .. "/fp16.mlpackage") .. " " .. F.q(fp32))
      r = json.decode(out)
    end)
    it("aligns the renamed ops by structure and reports each fp16 -> fp32 output", function()
      local ops = r.sections.ops
      -- fc1 (linear), relu, fc2 (linear): fp16 names end in _cast_fp16
      assert.equal(3, ops.aligned_by_structure)
      assert.equal(3, r.sections.dtypes.pairs["fp16 -> fp32"])
      -- the fp16 build casts its input and output: two casts gone
      assert.equal(2, #ops.removed)
      for _, o in ipairs(ops.removed) do assert.equal("cast", o.type) end
    end)
    it("moves every compute op off the ANE (the ANE computes in fp16 only)", function()
      local p = r.sections.placement
      assert.equal(3, #p.moved)
      for _, mv in ipairs(p.moved) do assert.equal("ANE", mv.before) assert.are_not.equal("ANE", mv.after) end
      assert.equal(0, p.after.devices.ANE)
    end)
    it("matches the weights through the rename and measures fp16 rounding (SNR > 60 dB)", function()
      local w = r.sections.weights
      assert.equal(0, #w.added + #w.removed)
      for _, c in ipairs(w.changed) do
        assert.equal("fp16", c.dtype_before)
        assert.equal("fp32", c.dtype_after)
        assert.equal(c.bytes_before * 2, c.bytes_after)
        -- null: identical values (zero biases); else fp16 rounding, ~74 dB for Gaussian weights
        assert.is_true(c.snr_db == json.null or c.snr_db > 60, tostring(c.snr_db))
      end
    end)
  end)

  describe("ONNX against ONNX", function()
    local r
    setup(function()
      local out, _, code = run("--format json " .. F.q(onnx_a) .. " " .. F.q(onnx_b))
      assert.equal(1, code)
      r = json.decode(out)
    end)
    it("has the ONNX sections", function()
      assert.equal("onnx", r.kind)
      assert.is_nil(r.sections.placement)
      assert.is_table(r.sections.ep)
    end)
    it("reports the added Erf node, the changed initializer and its SNR", function()
      assert.equal(1, #r.sections.ops.added)
      assert.equal("Erf", r.sections.ops.added[1].type)
      assert.equal(1, #r.sections.weights.changed)
      local c = r.sections.weights.changed[1]
      assert.equal("w", c.name)
      -- independent SNR: 10*log10(sum(w^2) / 0.5^2)
      local s = 0
      for i = 1, 256 do local v = ((i * 37) % 17 - 8) / 16 s = s + v * v end
      assert.near(10 * math.log(s / 0.25, 10), c.snr_db, 1e-3)
    end)
  end)

  describe("--format html", function()
    local function diff_data(a, b)
      local out, err, code = run("--format html " .. F.q(a) .. " " .. F.q(b))
      assert(code == 1, err)
      assert.matches("^<!doctype html>", out)
      local stripped = out:gsub('<script type="application/json" id="mlsh%-data">.-</script>', "") -- data may cite links
      stripped = stripped:gsub("http://www%.w3%.org/2000/svg", "")
      assert.is_nil(stripped:find("https?://"), "the page refers to the network")
      local s = out:match('<script type="application/json" id="mlsh%-data">(.-)</script>')
      return json.decode(s)
    end
    it("embeds the same sections as the other formats (golden: the diff part of the page data)", function()
      local d = diff_data(base, pal)
      golden("palettized.html.json", json.encode(d.diff, true) .. "\n")
      local want = json.decode((run("--format json " .. F.q(base) .. " " .. F.q(pal))))
      assert.equal(want.differences, d.diff.differences)
      for i, id in ipairs(want.order) do
        assert.equal(id, d.diff.sections[i].id)
        assert.equal(want.sections[id].changes, d.diff.sections[i].changes)
      end
    end)
    it("gives B's weights the SNR against A", function()
      local d = diff_data(base, pal)
      local snr = 0
      for _, w in ipairs(d.weights) do if w.snr then snr = snr + 1 end end
      assert.equal(4, snr)
    end)
    it("golden for the ONNX pair", function()
      local d = diff_data(onnx_a, onnx_b)
      golden("onnx.html.json", json.encode(d.diff, true) .. "\n")
      assert.is_table(d.ep)
    end)
  end)

  describe("golden output", function()
    local formats = { text = "txt", json = "json", markdown = "md" }
    for fmt, ext in pairs(formats) do
      it("palettized pair, " .. fmt, function()
        local out = run("--format " .. fmt .. " " .. F.q(base) .. " " .. F.q(pal))
        golden("palettized." .. ext, out)
      end)
      it("fp16/fp32 pair, " .. fmt, function()
        -- the fp32 rule's moves on tiny fixtures: the first stage (--static)
        local out = run("--static --format " .. fmt .. " " .. F.q(dir .. "/fp16.mlpackage") .. " " .. F.q(fp32))
        golden("fp16_fp32." .. ext, out)
      end)
      it("ONNX pair, " .. fmt, function()
        local out = run("--format " .. fmt .. " " .. F.q(onnx_a) .. " " .. F.q(onnx_b))
        golden("onnx." .. ext, out)
      end)
    end
  end)
end)
