-- Conformance: the interpreter on ../shared/corpus/runs (models converted by coremltools from torch,
-- with torch's own fp32 outputs). Bars: fp32 cases >= 70 dB SNR, fp16 cases >= 30 dB, integer
-- outputs equal. Prints one line per case and output; exits 1 when any case misses its bar.
-- usage: lua5.4 tests/conformance/runs.lua CORPUS_DIR
local mlsh = require "mlsh"
local core = require "mlsh.core"
local run = require "mlsh.run"

local corpus = (arg[1] or "../shared/corpus") .. "/runs"
local function exists(p) local f = io.open(p, "rb") if f then f:close() return true end return false end
if not exists(corpus .. "/README.md") then print("runs: no corpus at " .. corpus .. ", skipped") os.exit(0) end

local cases = {}
for _, name in ipairs({ "cnn_fp16", "cnn_fp32", "encoder_fp16_tanh", "encoder_fp32", "image_fp32", "lstm_fp32",
                        "misc_fp32", "mlp_fp32", "mobile_fp16", "unet_fp16" }) do
  if exists(corpus .. "/" .. name .. "/case.json") then cases[#cases + 1] = name end
end

-- Image cases again from PNG files of the same HWC uint8 pixels (tests/support/png_write.lua, not
-- libpng): the PNG path must agree with torch as the .npy path does. Returns the failures.
local function png_pass(m, name, dir, case, bar)
  local W = require "png_write"
  local fails = 0
  for k = 0, (case.samples or 1) - 1 do
    local px = assert(core.interp.npy_load(string.format("%s/input.%s.%d.npy", dir, case.image.input, k)))
    local s, a = px:shape(), px:array()
    local file = os.tmpname()
    W.write(file, { width = s[2], height = s[1], color = 2, depth = 8, pixel = function(x, y)
      local i = (y * s[2] + x) * 3
      return a[i + 1], a[i + 2], a[i + 3]
    end })
    local ok, outs = pcall(run.run, m, { [case.image.input] = file }, {})
    os.remove(file)
    for _, oname in ipairs(case.outputs) do
      local want = assert(core.interp.npy_load(string.format("%s/expected.%s.%d.npy", dir, oname, k)))
      local snr = ok and outs[oname] and run.snr(want, outs[oname]) or -math.huge
      if snr < bar then fails = fails + 1 end
      print(string.format("%s %-18s sample %d %-14s %s (bar %d dB, from PNG)", snr >= bar and "ok  " or "FAIL", name, k, oname,
        ok and string.format("%.1f dB", snr) or tostring(outs), bar))
    end
  end
  return fails
end

local failed = 0
for _, name in ipairs(cases) do
  local dir = corpus .. "/" .. name
  local f = io.open(dir .. "/case.json")
  local case = mlsh.json.decode(f:read("a"))
  f:close()
  local bar = case.precision == "fp16" and 30 or 70
  local m = assert(mlsh.load(dir .. "/model.mlpackage"))
  for k = 0, (case.samples or 1) - 1 do
    local inputs = {}
    for _, iname in ipairs(case.inputs) do inputs[iname] = string.format("%s/input.%s.%d.npy", dir, iname, k) end
    local ok, outs = pcall(run.run, m, inputs, {})
    if not ok then
      print(string.format("FAIL %-18s sample %d: %s", name, k, outs))
      failed = failed + 1
    else
      for _, oname in ipairs(case.outputs) do
        local want = assert(core.interp.npy_load(string.format("%s/expected.%s.%d.npy", dir, oname, k)))
        local got = outs[oname]
        local line
        if not got then line, failed = string.format("FAIL %-18s sample %d %s: no such output", name, k, oname), failed + 1
        else
          local isint = got:dtype():match("int") ~= nil
          local snr = run.snr(want, got)
          local pass = isint and snr == math.huge or (not isint and snr >= bar)
          if not pass then failed = failed + 1 end
          line = string.format("%s %-18s sample %d %-14s %s %s", pass and "ok  " or "FAIL", name, k, oname,
            snr == math.huge and "exact" or string.format("%.1f dB", snr), isint and "(integer: must be equal)" or string.format("(bar %d dB)", bar))
        end
        print(line)
      end
    end
  end
  if case.image then failed = failed + png_pass(m, name, dir, case, bar) end
  m:close()
end
print(string.format("runs: %d cases, %d failures", #cases, failed))
os.exit(failed == 0 and 0 or 1)
