-- playbook_outputs_spec.lua — playbooks 4a-4c and 5b with --original: the interpreter runs both
-- models, the output SNR is evidence (checked against SNRs computed here from `mlsh run` .npy
-- outputs) and decides branches; without --original nothing changes; a differing original is named.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"
local CF = require "compress_fixtures"
local IH = require "interp_helpers"
local playbook = require "mlsh.engine.playbook"

local interp = core.interp
local dir = CF.tmpdir()
local set

local base, q8, pal6
setup(function()
  set = assert(playbook.discover({}))
  base = CF.base(dir .. "/base.mlpackage", { precision = "fp32" })
  q8, pal6 = dir .. "/q8.mlpackage", dir .. "/pal6.mlpackage"
  for _, c in ipairs({ { q8, "--quantize int8" }, { pal6, "--palettize 6" } }) do
    local _, err, code = F.run(string.format("compress %s %s -o %s", F.q(base), c[2], F.q(c[1])))
    assert.are.equal(0, code, err)
  end
end)

local n_runs = 0
local function out_of(model, args, name)
  n_runs = n_runs + 1
  local d = string.format("%s/r%d", dir, n_runs)
  local o, err, code = F.run(string.format("run %s %s -o %s", F.q(model), args, F.q(d)))
  assert.are.equal(0, code, err .. o)
  return assert(interp.npy_load(d .. "/" .. (name or "logits") .. ".npy")):array()
end

-- SNR of got against ref over the two random samples the playbooks use (seeds 0 and 1000).
local function snr_of(ref, got, ref_args, got_args, name)
  local s, e = 0, 0
  for _, seed in ipairs({ 0, 1000 }) do
    local a = out_of(ref, "--random " .. seed .. " " .. (ref_args or ""), name)
    local b = out_of(got, "--random " .. seed .. " " .. (got_args or ""), name)
    for i = 1, #a do s, e = s + a[i] ^ 2, e + (a[i] - b[i]) ^ 2 end
  end
  if e == 0 then return math.huge end
  return 10 * math.log(s / e, 10)
end

local function diagnose(symptom, path, original, answers)
  local m = assert(mlsh.load(path))
  local o = original and assert(mlsh.load(original)) or nil
  local ctx = playbook.context(m, { path = path, original = o })
  local r = playbook.diagnose(set.by_id[symptom], ctx, { answers = answers or {} })
  m:close()
  if o then o:close() end
  return r
end

local function step(r, id)
  for _, s in ipairs(r.steps) do if s.node == id then return s end end
  error("no step " .. id .. " in " .. table.concat(r.path, ">"))
end

describe("accuracy-after-compression with --original", function()
  it("int8 outputs that match the original (>= 40 dB, same top-1) lead to outputs-match", function()
    local r = diagnose("accuracy-after-compression", q8, base)
    assert.are.equal("compression-kind>activation-quant>quant-granularity>quant-spread>outputs-match", table.concat(r.path, ">"))
    local snr = snr_of(base, q8)
    assert.is_true(snr >= 40, tostring(snr))
    local ev = step(r, "quant-spread").evidence
    assert.matches(string.format("output SNR vs --original: logits %.2f dB", snr), ev, 1, true)
    assert.matches("top-1 100%", ev, 1, true)
    assert.matches("; weights: ", ev, 1, true)
    assert.matches(string.format("logits %.2f dB", snr), r.facts[1], 1, true)
  end)

  it("6-bit palettes below 40 dB at the outputs follow the weight spread; the output SNR is shown", function()
    local r = diagnose("accuracy-after-compression", pal6, base)
    local snr = snr_of(base, pal6)
    assert.is_true(snr < 40, tostring(snr))
    -- these weights are not matched by name, so the spread stays open: with the output SNR as why
    assert.is_nil(r.leaf)
    assert.are.equal("palette-spread", r.needs[1].id)
    assert.matches(string.format("output SNR vs --original: logits %.2f dB", snr), r.needs[1].unknown, 1, true)
    r = diagnose("accuracy-after-compression", pal6, base, { ["palette-spread"] = "few" })
    assert.are.equal("palette-sensitive-layers", r.leaf.id)
    local found = false
    for _, l in ipairs(r.facts) do found = found or l:find(string.format("logits %.2f dB", snr), 1, true) ~= nil end
    assert.is_true(found)
  end)

  it("without --original: no output runs, the spread question stays open as before", function()
    local r = diagnose("accuracy-after-compression", q8, nil)
    assert.is_nil(r.leaf)
    assert.are.equal("quant-spread", r.needs[1].id)
    assert.is_nil(r.needs[1].unknown:find("output SNR", 1, true))
    for _, s in ipairs(r.steps) do assert.is_nil((s.evidence or ""):find("output SNR", 1, true)) end
  end)

  it("an original with other inputs is named in the evidence, and the weights still decide", function()
    local other = IH.build("iOS16", function(f) f:output("logits", f:op("relu", { x = f:input("x", "fp32", { 1, 10 }) })) end)
    local out, err, code = F.run(string.format("diagnose %s --symptom accuracy-after-compression --original %s --json", F.q(q8), F.q(other)))
    assert.is_true(code == 0 or code == 1, err)
    local doc = json.decode(out)
    local ev
    for _, s in ipairs(doc.steps or {}) do if s.node == "quant-spread" then ev = s.evidence end end
    for _, n in ipairs(doc.needs or {}) do if n.id == "quant-spread" then ev = n.unknown end end
    assert.is_string(ev)
    assert.matches("output SNR vs --original not measured: input 'x' is fp32[1,10] in " .. other .. " but fp32[1,16,8,8] in " .. q8, ev, 1, true)
  end)
end)

describe("conversion-failure (5b) with --original", function()
  -- y = relu(x) * 256 * 512 / 131072: relu(x) in fp32, inf in fp16 for x > 0.5 (65504 overflows)
  local function scaled(precision, factor)
    return IH.build("iOS16", function(f)
      local x = f:input("x", "fp32", { 1, 64 })
      local y = f:op("relu", { x = x })
      for _, k in ipairs({ 256, 512, factor / 131072 }) do y = f:op("mul", { x = y, y = k }) end
      f:output("y", y)
    end, precision)
  end
  local answers = { ["failure-kind"] = "wrong-output" }

  it("right in fp32 but not as declared (fp16): the precision question answers fp16", function()
    local ref, m16 = scaled("fp32", 1), scaled("fp16", 1)
    local r = diagnose("conversion-failure", m16, ref, answers)
    assert.are.equal("failure-kind>preprocessing>eval-mode>precision>fp16-precision", table.concat(r.path, ">"))
    local ev = step(r, "precision").evidence
    local as_declared = snr_of(ref, m16, "--precision fp32", "", "y")
    local in_fp32 = snr_of(ref, m16, "--precision fp32", "--precision fp32", "y")
    assert.is_true(as_declared < 40 and in_fp32 >= 40, as_declared .. " " .. in_fp32)
    assert.matches("output SNR vs --original (as declared): y " .. (as_declared == -math.huge and "-inf" or string.format("%.2f", as_declared)), ev, 1, true)
    assert.matches("output SNR vs --original (in fp32): y " .. (in_fp32 == math.huge and "inf" or string.format("%.2f", in_fp32)), ev, 1, true)
  end)

  it("wrong in fp32 too: not precision, on to the layout question", function()
    local ref, m2 = scaled("fp32", 1), scaled("fp32", 2)
    local r = diagnose("conversion-failure", m2, ref, answers)
    assert.are.equal("failure-kind>preprocessing>eval-mode>precision>layout", table.concat(r.path, ">"))
    local snr = snr_of(ref, m2, "--precision fp32", "--precision fp32", "y")
    assert.matches(string.format("(in fp32): y %.2f dB", snr), step(r, "precision").evidence, 1, true)
  end)

  it("without --original the fp32 program is still judged by its compute dtypes", function()
    local r = diagnose("conversion-failure", scaled("fp32", 1), nil, answers)
    assert.matches("compute ops are fp32", step(r, "precision").evidence, 1, true)
  end)
end)
