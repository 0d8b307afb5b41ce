-- interp_png_spec.lua — PNG image inputs (`mlsh run --input image=photo.png`, m:run): files
-- written by the spec's own encoder (tests/support/png_write.lua, not libpng) in every colour type,
-- bit depth and with Adam7; the decoded input tensor and the model output (scale, per-channel bias,
-- RGB/BGR/grayscale) against values computed here by hand; size, corrupt and truncated errors.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local F = require "fixtures"
local IH = require "interp_helpers"
local W = require "png_write"

local interp = core.interp
local dir = IH.dir

-- A 3x2 model: image (scale, bias) -> relu, so the output is scale * pixel + bias when positive.
local function model(color, scale, bias, w, h)
  return IH.build("iOS16", function(f)
    local x = f:input("image", "image", { width = w or 3, height = h or 2, color = color, scale = scale, bias = bias })
    f:output("y", f:op("relu", { x = x }))
  end)
end

local n_png = 0
local function png(o)
  n_png = n_png + 1
  local path = string.format("%s/p%d.png", dir, n_png)
  o.width, o.height = o.width or 3, o.height or 2
  W.write(path, o)
  return path
end

local function run(path, file)
  local m = mlsh.load(path)
  local outs, info = m:run({ image = file }, { precision = "fp32" })
  m:close()
  return info.inputs.image:array(), outs.y:array()
end

local function same(got, want)
  assert.are.equal(#want, #got)
  for i = 1, #want do
    if math.abs(got[i] - want[i]) > 1e-4 * (1 + math.abs(want[i])) then
      error(string.format("element %d: got %.7g, want %.7g", i, got[i], want[i]), 2)
    end
  end
end

-- Planar [1, C, H, W] values of f(channel, x, y) for a 3x2 image.
local function planar(c, f)
  local t = {}
  for ch = 1, c do for y = 0, 1 do for x = 0, 2 do t[#t + 1] = f(ch, x, y) end end end
  return t
end

local function rgb8(x, y) return 10 + 40 * x + y, 200 - 30 * x - 7 * y, 17 * (x + 1) * (y + 1) end

describe("PNG image inputs", function()
  it("8-bit RGB into an RGB model: pixels in RGB order, then scale and per-channel bias", function()
    local file = png { color = 2, depth = 8, pixel = rgb8 }
    local input, y = run(model("RGB", 0.5, { -1, 2, 3 }), file)
    same(input, planar(3, function(ch, x, yy) return (select(ch, rgb8(x, yy))) end))
    local bias = { -1, 2, 3 }
    same(y, planar(3, function(ch, x, yy) return math.max(0, 0.5 * select(ch, rgb8(x, yy)) + bias[ch]) end))
  end)

  it("into a BGR model: channel 0 is blue, and the bias follows the model's channel order", function()
    local file = png { color = 2, depth = 8, pixel = rgb8, filter = 1 }
    local input, y = run(model("BGR", 2, { 1, 2, 3 }), file)
    same(input, planar(3, function(ch, x, yy) return (select(4 - ch, rgb8(x, yy))) end))
    same(y, planar(3, function(ch, x, yy) return 2 * select(4 - ch, rgb8(x, yy)) + ch end))
  end)

  it("16-bit RGBA, Adam7-interlaced: alpha dropped, samples scaled to round(v * 255 / 65535)", function()
    local function px(x, y) return 1000 * x + 333 * y + 5, 65535 - 4099 * x - 77 * y, 257 * (x + 3 * y) + 128, 1234 end
    local file = png { color = 6, depth = 16, interlace = true, pixel = px }
    local input = run(model("RGB", 1, { 0, 0, 0 }), file)
    same(input, planar(3, function(ch, x, yy) return math.floor(select(ch, px(x, yy)) * 255 / 65535 + 0.5) end))
  end)

  it("palette with tRNS: entries expanded to RGB, transparency ignored", function()
    local pal = { { 1, 2, 3 }, { 250, 128, 0 }, { 9, 99, 199 } }
    local function idx(x, y) return (x + y) % 3 end
    local file = png { color = 3, depth = 4, palette = pal, trns = { 0, 128 }, pixel = idx }
    local input = run(model("RGB"), file)
    same(input, planar(3, function(ch, x, yy) return pal[idx(x, yy) + 1][ch] end))
  end)

  it("2-bit grey into a grayscale model: levels 0..3 become 0, 85, 170, 255; scalar bias", function()
    local function g(x, y) return (x + 2 * y) % 4 end
    local file = png { color = 0, depth = 2, interlace = true, pixel = g }
    local input, y = run(model("GRAYSCALE", 0.25, -10), file)
    same(input, planar(1, function(_, x, yy) return 85 * g(x, yy) end))
    same(y, planar(1, function(_, x, yy) return math.max(0, 0.25 * 85 * g(x, yy) - 10) end))
  end)

  it("grey+alpha into an RGB model: grey replicated to three channels", function()
    local function ga(x, y) return 50 * x + 3 * y, 7 end
    local input = run(model("RGB"), png { color = 4, depth = 8, pixel = ga })
    same(input, planar(3, function(_, x, yy) return (ga(x, yy)) end))
  end)

  it("RGB into a grayscale model: ITU-R 601 luma as PIL's convert('L')", function()
    local input = run(model("GRAYSCALE"), png { color = 2, depth = 8, pixel = rgb8 })
    same(input, planar(1, function(_, x, yy)
      local r, g, b = rgb8(x, yy)
      return (19595 * r + 38470 * g + 7471 * b + 32768) // 65536
    end))
  end)

  it("a PNG is known by its signature whatever its name", function()
    local file = dir .. "/photo.img"
    W.write(file, { width = 3, height = 2, color = 2, depth = 8, pixel = rgb8 })
    local input = run(model("RGB"), file)
    same(input, planar(3, function(ch, x, yy) return (select(ch, rgb8(x, yy))) end))
  end)

  it("`mlsh run --input image=FILE.png` writes the same output", function()
    local file = png { color = 2, depth = 8, pixel = rgb8 }
    local out, err, code = F.run(string.format("run %s --input image=%s -o %s/png_out", F.q(model("RGB", 0.5, { -1, 2, 3 })), F.q(file), F.q(dir)))
    assert.are.equal(0, code, err .. out)
    local bias = { -1, 2, 3 }
    same(assert(interp.npy_load(dir .. "/png_out/y.npy")):array(),
      planar(3, function(ch, x, yy) return math.max(0, 0.5 * select(ch, rgb8(x, yy)) + bias[ch]) end))
  end)
end)

describe("PNG input errors", function()
  local good
  setup(function() good = W.encode { width = 3, height = 2, color = 2, depth = 8, pixel = rgb8 } end)

  local function run_err(bytes, name, m)
    local file = dir .. "/" .. name
    local f = assert(io.open(file, "wb"))
    f:write(bytes)
    f:close()
    local out, err, code = F.run(string.format("run %s --input image=%s", F.q(m or model("RGB")), F.q(file)))
    assert.are.equal(1, code, out)
    assert.are.equal(1, select(2, err:gsub("\n", "")), err)
    return err, file
  end

  it("a size other than the model's is refused, naming the input, both sizes and the file", function()
    local err, file = run_err(good, "small.png", model("RGB", 1, nil, 4, 2))
    assert.matches("input 'image': expected an image of 4x2 (width x height), got 3x2 in " .. file, err, 1, true)
  end)

  it("a corrupt chunk (IHDR CRC) is a one-line error naming the file", function()
    local bad = good:sub(1, 29) .. string.char(good:byte(30) ~ 0xFF) .. good:sub(31)
    local err, file = run_err(bad, "crc.png")
    assert.matches(file .. ": corrupt PNG (IHDR: CRC error)", err, 1, true)
  end)

  it("a truncated file is a one-line error naming the file", function()
    local err, file = run_err(good:sub(1, #good - 30), "cut.png")
    assert.matches(file .. ": truncated PNG", err, 1, true)
  end)

  it("a file that is not a PNG is named", function()
    local err, file = run_err("GIF89a not a png", "gif.png")
    assert.matches(file .. ": not a PNG file", err, 1, true)
  end)

  it("a PNG for an input that is not an image is refused", function()
    local path = IH.build("iOS16", function(f)
      f:output("y", f:op("relu", { x = f:input("image", "fp32", { 1, 3, 2, 3 }) }))
    end)
    local err = run_err(good, "arr.png", path)
    assert.matches("'image' is not an image input", err, 1, true)
  end)
end)

describe("PNG input size limits", function()
  it("a PNG beyond --memory-budget is refused from its header, naming the file", function()
    local path = model("RGB", 1, nil, 40, 40)
    local file = png { width = 40, height = 40, color = 2, depth = 8, pixel = function() return 1, 2, 3 end }
    -- 40 x 40 x 3 samples held as 8-byte ints: 38400 bytes, over a 16 KiB budget
    local out, err, code = F.run(string.format("run %s --input image=%s --memory-budget 16K", F.q(path), F.q(file)))
    assert.are.equal(1, code, out)
    assert.matches(file .. ": PNG of 40x40 pixels is larger than the memory budget", err, 1, true)
    local _, err2, code2 = F.run(string.format("run %s --input image=%s --memory-budget 64K", F.q(path), F.q(file)))
    assert.are.equal(0, code2, err2)
  end)
end)
