-- compress_check_spec.lua — output SNR next to weight SNR: `mlsh compress --check-outputs` (text
-- and --json), its Lua API (mlsh.compress_check), and the errors (differing inputs, --dry-run, a
-- bad input file). Expected SNR, max error and top-1 come from the `mlsh run` .npy outputs of both
-- models, reduced here with the spec's own loops.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local json = require "mlsh.json"
local F = require "fixtures"
local CF = require "compress_fixtures"
local IH = require "interp_helpers"
local check = require "mlsh.compress_check"

local interp = core.interp
local dir = CF.tmpdir()
local base = CF.base(dir .. "/base.mlpackage", { precision = "fp32" })

local function outputs(model, input_args, tag)
  local out = dir .. "/run_" .. tag
  local o, err, code = F.run(string.format("run %s %s -o %s", F.q(model), input_args, F.q(out)))
  assert.are.equal(0, code, err .. o)
  return assert(interp.npy_load(out .. "/logits.npy")):array()
end

-- SNR, max |err| and top-1 agreement (argmax of the 10 logits) over samples {{ref, got}...}.
local function expected(pairs)
  local s, e, mx, same = 0, 0, 0, 0
  for _, p in ipairs(pairs) do
    local a, b = p[1], p[2]
    local ia, ib = 1, 1
    for i = 1, #a do
      s, e = s + a[i] ^ 2, e + (a[i] - b[i]) ^ 2
      mx = math.max(mx, math.abs(a[i] - b[i]))
      if a[i] > a[ia] then ia = i end
      if b[i] > b[ib] then ib = i end
    end
    if ia == ib then same = same + 1 end
  end
  return 10 * math.log(s / e, 10), mx, same / #pairs
end

local x_file = dir .. "/x.npy"
setup(function() assert(IH.tensor(IH.values(16 * 8 * 8, 3), { 1, 16, 8, 8 }):save(x_file)) end)

describe("mlsh compress --check-outputs", function()
  it("--json adds outputs_check: per-output SNR, max error, top-1 over random samples", function()
    local out = dir .. "/pal.mlpackage"
    local o, err, code = F.run(string.format("compress %s --palettize 4 -o %s --check-outputs --random 5 --samples 2 --json", F.q(base), F.q(out)))
    assert.are.equal(0, code, err)
    local doc = json.decode(o)
    assert.is_number(doc.totals.snr_db)
    local c = doc.outputs_check
    assert.are.equal(2, c.samples)
    assert.are.equal(5, c.seed)
    assert.are.equal("random", c.inputs)
    -- sample k runs with seed SEED + 1000 (k - 1), as `mlsh compare --outputs`
    local pairs = {}
    for k, seed in ipairs({ 5, 1005 }) do
      pairs[k] = { outputs(base, "--random " .. seed, "b" .. k), outputs(out, "--random " .. seed, "p" .. k) }
    end
    local snr, mx, top1 = expected(pairs)
    assert.are.equal("logits", c.outputs[1].name)
    assert.is_true(math.abs(c.outputs[1].snr_db - snr) < 1e-6, c.outputs[1].snr_db .. " vs " .. snr)
    assert.is_true(math.abs(c.outputs[1].max_abs_err - mx) < 1e-7)
    assert.are.equal(top1, c.outputs[1].top1_agreement)
    assert.are.equal(c.outputs[1].snr_db, c.min_snr_db)
    -- a 4-bit palette is lossy: finite SNR, well above 0
    assert.is_true(snr > 5 and snr < 80, tostring(snr))
  end)

  it("text: the per-output line and output SNR next to weight SNR, with --input", function()
    local out = dir .. "/q8.mlpackage"
    local o, err, code = F.run(string.format("compress %s --quantize int8 -o %s --check-outputs --input x=%s", F.q(base), F.q(out), F.q(x_file)))
    assert.are.equal(0, code, err)
    local snr = expected({ { outputs(base, "--input x=" .. F.q(x_file), "bx"), outputs(out, "--input x=" .. F.q(x_file), "qx") } })
    assert.matches("outputs vs the original (given inputs, 1 sample, precision model):", o, 1, true)
    assert.matches(string.format("logits%%s+output SNR %.2f dB", snr), o)
    local wsnr = o:match("SNR ([%d.]+) dB over the compressed weights")
    assert.is_truthy(wsnr)
    assert.matches(string.format("output SNR %.2f dB (worst output) next to weight SNR %s dB", snr, wsnr), o, 1, true)
  end)

  it("--in-place: the original is run before it is replaced", function()
    local copy = dir .. "/inplace.mlpackage"
    CF.base(copy, { precision = "fp32" })
    local ref = outputs(copy, "--input x=" .. F.q(x_file), "ip_before")
    local o, err, code = F.run(string.format("compress %s --palettize 2 --in-place --check-outputs --input x=%s --json", F.q(copy), F.q(x_file)))
    assert.are.equal(0, code, err)
    local got = outputs(copy, "--input x=" .. F.q(x_file), "ip_after")
    local snr = expected({ { ref, got } })
    assert.is_true(math.abs(json.decode(o).outputs_check.outputs[1].snr_db - snr) < 1e-6)
  end)

  it("without --check-outputs the JSON has no outputs_check key", function()
    local o, err, code = F.run(string.format("compress %s --palettize 4 -o %s --json", F.q(base), F.q(dir .. "/plain.mlpackage")))
    assert.are.equal(0, code, err)
    assert.is_nil(json.decode(o).outputs_check)
  end)

  it("refuses --dry-run (exit 2) and reports a bad input file on one line (exit 1, nothing written)", function()
    local _, err, code = F.run(string.format("compress %s --palettize 4 --dry-run --check-outputs", F.q(base)))
    assert.are.equal(2, code)
    assert.matches("not with --dry-run", err, 1, true)
    local out = dir .. "/never.mlpackage"
    local _, err2, code2 = F.run(string.format("compress %s --palettize 4 -o %s --check-outputs --input x=%s/missing.npy", F.q(base), F.q(out), F.q(dir)))
    assert.are.equal(1, code2)
    assert.matches("^mlsh compress: %-%-check%-outputs: .*missing%.npy.*%(nothing written%)", err2)
    assert.are.equal(1, select(2, err2:gsub("\n", "")))
    assert.is_nil(io.open(out .. "/Manifest.json"))
  end)
end)

describe("mlsh.compress_check", function()
  it("save(m, path, policy, opts): the compress report with outputs_check", function()
    local m = mlsh.load(base)
    local out = dir .. "/api.mlpackage"
    local report = check.save(m, out, { palettize = { nbits = 6 } }, { inputs = { x = x_file } })
    m:close()
    local snr = expected({ { outputs(base, "--input x=" .. F.q(x_file), "ab"), outputs(out, "--input x=" .. F.q(x_file), "ac") } })
    local r = report.outputs_check.outputs[1]
    assert.is_true(math.abs(r.snr_db - snr) < 1e-6)
    assert.is_true(report.totals.snr_db > 0)
  end)

  it("compare() of identical models is an infinite SNR with zero error", function()
    local a, b = mlsh.load(base), mlsh.load(base)
    local res = check.compare(a, b, { random = 1 })
    a:close() b:close()
    assert.are.equal(math.huge, res.outputs[1].snr_db)
    assert.are.equal(0, res.outputs[1].max_abs_err)
    assert.are.equal(1, res.outputs[1].top1_agreement)
  end)

  it("an original with different inputs is a clear error naming the input and both models", function()
    local other = IH.build("iOS16", function(f) f:output("logits", f:op("relu", { x = f:input("x", "fp32", { 1, 10 }) })) end)
    local named = IH.build("iOS16", function(f) f:output("logits", f:op("relu", { x = f:input("z", "fp32", { 1, 10 }) })) end)
    local a, b, c = mlsh.load(base), mlsh.load(other), mlsh.load(named)
    local ok, err = pcall(check.compare, a, b, {})
    local ok2, err2 = pcall(check.compare, b, c, {})
    a:close() b:close() c:close()
    assert.is_false(ok)
    assert.matches("input 'x' is fp32[1,16,8,8] in " .. base .. " but fp32[1,10] in " .. other, err, 1, true)
    assert.is_false(ok2)
    assert.matches(other .. " has input 'x' (fp32[1,10]) which " .. named .. " lacks", err2, 1, true)
  end)
end)

describe("recipes/compress-sweep.lua output SNR", function()
  local HOME = os.getenv("MLSH_HOME")
  it("each candidate's output SNR (--json) is the written model's, measured from `mlsh run` outputs", function()
    local out = dir .. "/sweep.mlpackage"
    local o, err, code = F.run(string.format("%s/recipes/compress-sweep.lua %s --min-snr 30 -o %s --input x=%s --json",
      F.q(HOME), F.q(base), F.q(out), F.q(x_file)))
    assert.are.equal(0, code, err)
    local doc = json.decode(o)
    local by = {}
    for _, c in ipairs(doc.candidates) do by[c.label] = c end
    local ref = outputs(base, "--input x=" .. F.q(x_file), "sw_ref")
    -- the winner is the file written with -o
    local mix = by["per-layer mix (winner)"]
    local snr = expected({ { ref, outputs(out, "--input x=" .. F.q(x_file), "sw_mix") } })
    assert.is_true(math.abs(mix.output_snr_db - snr) < 1e-6, mix.output_snr_db .. " vs " .. snr)
    assert.are.equal("given", mix.outputs_check.inputs)
    -- a uniform candidate is the model `mlsh compress` writes with that setting
    local q8 = dir .. "/sweep_q8.mlpackage"
    local _, err2, code2 = F.run(string.format("compress %s --quantize int8 -o %s", F.q(base), F.q(q8)))
    assert.are.equal(0, code2, err2)
    local snr8 = expected({ { ref, outputs(q8, "--input x=" .. F.q(x_file), "sw_q8") } })
    assert.is_true(math.abs(by["all int8 per-channel"].output_snr_db - snr8) < 1e-6)
    assert.is_number(by["all int8 per-channel"].worst_snr_db)
  end)

  it("text shows the output SNR column; --no-check-outputs leaves it out (null in --json)", function()
    local o, err, code = F.run(string.format("%s/recipes/compress-sweep.lua %s --min-snr 30 --dry-run --random 2", F.q(HOME), F.q(base)))
    assert.are.equal(0, code, err)
    assert.matches("worst SNR dB%s+output SNR dB", o)
    assert.matches("per%-layer mix %(winner%)[^\n]+ [%d.]+ %(top%-1 %d+%%%)", o)
    local j, err3, code3 = F.run(string.format("%s/recipes/compress-sweep.lua %s --min-snr 30 --dry-run --no-check-outputs --json", F.q(HOME), F.q(base)))
    assert.are.equal(0, code3, err3)
    for _, c in ipairs(json.decode(j).candidates) do assert.are.equal(json.null, c.output_snr_db) end
  end)
end)
