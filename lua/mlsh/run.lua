-- mlsh.run — running ML programs (and NeuralNetwork, tree ensemble and GLM models) with the C
-- interpreter (core/interp), and comparing outputs. A classifier's label output is a string or
-- int64 Tensor listed in info.labels; its probabilities are a float vector.
--   m:run(inputs, opts) -> {name = Tensor}, info          (raises on error, message names the model)
--     inputs: {name = Tensor | "file.npy" | "image.png" (image inputs) | Array}; opts: precision ("model"|"fp32"|"fp16"), fn,
--     random (seed for missing inputs), shapes ({name = {dims}}), trace (dir), memory_budget (bytes),
--     keep (every op's outputs kept as Tensors in info.trace)
--   M.prepare(m, inputs, opts) -> program, {name = Tensor}   (the same, without running)
--   M.compare(outs_a, outs_b) -> {{name, snr, max_abs, top1?}...}
--   M.snr(ref, got) -> dB (Tensors or Arrays)
local core = require "mlsh.core"

local M = {}
local interp = core.interp
local FLOATS = { fp16 = true, fp32 = true, fp64 = true }

local function numel(s) local n = 1 for _, d in ipairs(s) do n = n * d end return n end

-- Shape of a generated input: --shape if given, else the program's declared dims, with unknown
-- ones from the model description's default shape (1 when it has none).
local function shape_of(io, given, feat)
  if given then return given end
  local default = feat and type(feat.shape) == "table" and #feat.shape == #io.shape and feat.shape or nil
  local s = {}
  for i, d in ipairs(io.shape) do s[i] = d >= 0 and d or (default and default[i] >= 0 and default[i] or 1) end
  return s
end

local function feature_kinds(m, fn)
  local kinds = {}
  local ok, feats = pcall(m.inputs, m, fn)
  if ok then for _, f in ipairs(feats) do kinds[f.name] = f end end
  return kinds
end

-- Whether an image of h x w pixels fits the image feature (its fixed size, enumerated sizes or
-- size ranges): Core ML refuses any other size (it resizes only when the caller asks, through
-- MLFeatureValue's image constraints), so mlsh does not resize either.
local function size_ok(feat, h, w)
  local fl = feat.flexibility
  if fl and fl.kind == "enumerated" then
    for _, s in ipairs(fl.shapes) do if s[1] == h and s[2] == w then return true end end
    return false
  elseif fl and fl.kind == "range" then
    local function inside(v, r) return v >= r[1] and (r[2] < 0 or v <= r[2]) end
    return inside(h, fl.ranges[1]) and inside(w, fl.ranges[2])
  end
  return (feat.height or h) == h and (feat.width or w) == w
end

local function sizes_of(feat)
  local fl = feat.flexibility
  if fl and fl.kind == "enumerated" then
    local t = {}
    for i, s in ipairs(fl.shapes) do t[i] = string.format("%dx%d", s[2], s[1]) end
    return "one of " .. table.concat(t, ", ")
  elseif fl and fl.kind == "range" then
    local function r(x) return string.format("%d..%s", x[1], x[2] < 0 and "any" or tostring(x[2])) end
    return string.format("width %s, height %s", r(fl.ranges[2]), r(fl.ranges[1]))
  end
  return string.format("%dx%d", feat.width or 0, feat.height or 0)
end

-- A PNG file for an image input: decoded to 8-bit RGB (or grey for a grayscale input) as
-- core/pngdl.c documents; the model's colour layout, scale and bias follow as for .npy pixels.
local function png_input(name, path, feat)
  if not (feat and feat.kind == "image") then
    error(string.format("input '%s': %s is a PNG, but '%s' is not an image input (give its values as .npy)", name, path, name), 0)
  end
  local t, err = interp.png_load(path, (feat.color_space or "rgb"):lower():find("^gray") and 1 or 3)
  if not t then error(err, 0) end
  return t
end

-- A PNG by its name or its signature (whatever the file is called).
local function is_png(path)
  if path:lower():match("%.png$") then return true end
  local f = io.open(path, "rb")
  if not f then return false end
  local head = f:read(8)
  f:close()
  return head == "\x89PNG\r\n\x1a\n"
end

local function load_input(name, v, feat)
  local src = type(v) == "string" and " in " .. v or ""
  if type(v) == "string" and is_png(v) then
    v = png_input(name, v, feat)
  elseif type(v) == "string" then
    local t, err = interp.npy_load(v)
    if not t then error(err, 0) end
    v = t
  elseif type(v) == "userdata" and getmetatable(v) ~= getmetatable(interp.tensor({ 0 }, "fp32")) then
    local t, err = interp.tensor(v, "fp32")
    if not t then error("input '" .. name .. "': " .. err, 0) end
    v = t
  end
  if feat and feat.kind == "image" and v:dtype() == "uint8" then
    local sh = v:shape()
    if #sh >= 2 and not size_ok(feat, sh[1], sh[2]) then
      error(string.format("input '%s': expected an image of %s (width x height), got %dx%d%s", name, sizes_of(feat), sh[2], sh[1], src), 0)
    end
    local cs = (feat.color_space or "rgb"):upper()
    local t, err = interp.image(v, cs)
    if not t then error("input '" .. name .. "': " .. err, 0) end
    v = t
  end
  return v
end

function M.prepare(m, inputs, opts)
  opts = opts or {}
  if opts.memory_budget then interp.set_budget(opts.memory_budget) end
  local prog, err = interp.load(m, m:_spec(), { fn = opts.fn, precision = opts.precision or "model" })
  if not prog then error(m:_path() .. ": " .. err, 0) end
  local msg = prog:check(m:_path())
  if msg then error(msg, 0) end
  local feats = feature_kinds(m, opts.fn)
  local ins = {}
  for i, io in ipairs(prog:inputs()) do
    local v = inputs and inputs[io.name]
    if v ~= nil then
      local t = load_input(io.name, v, feats[io.name])
      -- Core ML converts between float types at the input (an fp32 array for an fp16 input)
      if FLOATS[io.dtype] and FLOATS[t:dtype()] and t:dtype() ~= io.dtype then t = t:astype(io.dtype) end
      ins[io.name] = t
    elseif opts.random or io.state then
      local dt = io.dtype == "unknown" and "fp32" or io.dtype
      local hi = feats[io.name] and feats[io.name].kind == "image" and 256 or 10
      local shape = shape_of(io, opts.shapes and opts.shapes[io.name], feats[io.name])
      local t, terr
      if io.state then t, terr = interp.tensor(core.array.new(numel(shape)), dt, shape)
      else t, terr = interp.random(dt, shape, (opts.random or 0) + i, hi) end
      if not t then error(string.format("%s: input '%s': %s", m:_path(), io.name, terr), 0) end
      ins[io.name] = t
    else
      error(string.format("%s: input '%s' is missing (expected %s[%s]; give --input %s=FILE or --random SEED)",
        m:_path(), io.name, io.dtype, table.concat(io.shape, ","), io.name), 0)
    end
  end
  if inputs then
    for k in pairs(inputs) do
      if not ins[k] then error(string.format("%s: the program has no input '%s'", m:_path(), k), 0) end
    end
  end
  return prog, ins
end

function M.run(m, inputs, opts)
  opts = opts or {}
  local prog, ins = M.prepare(m, inputs, opts)
  local outs, info = prog:run(ins, { trace = opts.trace, keep = opts.keep })
  if not outs then error(m:_path() .. ": " .. info, 0) end
  info.inputs = ins
  info["function"] = prog:function_name()
  info.labels = {} -- outputs holding class labels (strings or int64): reported, not written as .npy
  for k, t in pairs(outs) do
    if t:dtype() == "string" or (t:dtype() == "int64" and m:_spec() and M.is_label(m, k)) then info.labels[k] = true end
  end
  return outs, info
end

-- Whether output k is a classifier's predicted label (the description's predictedFeatureName).
function M.is_label(m, k)
  local ok, d = pcall(function() return m:_spec().description end)
  return ok and d and d.predictedFeatureName == k or false
end

local function values(t)
  if type(t) == "userdata" and t.array then return t:array() end
  return t
end

function M.snr(ref, got)
  local a, b = values(ref), values(got)
  local s, e = 0, 0
  for i = 1, #a do
    local d = a[i] - b[i]
    s, e = s + a[i] * a[i], e + d * d
  end
  if e == 0 then return math.huge end
  if s == 0 then return -math.huge end
  return 10 * math.log(s / e, 10)
end

local function argmax_rows(a, n)
  local best = {}
  for r = 0, #a // n - 1 do
    local bi, bv = 1, -math.huge
    for j = 1, n do
      if a[r * n + j] > bv then bi, bv = j, a[r * n + j] end
    end
    best[#best + 1] = bi
  end
  return best
end

-- Per output in a: SNR of b against a, max |a - b|, and top-1 agreement when the output looks
-- like class scores (a last dimension of 2..100000 and at most 1024 rows).
function M.compare(outs_a, outs_b)
  local names = {}
  for k, t in pairs(outs_a) do -- a classifier's string labels are left out: its probabilities are compared
    if not (type(t) == "userdata" and t.dtype and t:dtype() == "string") then names[#names + 1] = k end
  end
  table.sort(names)
  local res = {}
  for _, k in ipairs(names) do
    local r = { name = k }
    local b = outs_b[k]
    if not b then r.missing = true
    else
      local x, y = values(outs_a[k]), values(b)
      if #x ~= #y then r.shape_mismatch = true
      else
        r.snr = M.snr(x, y)
        local mx = 0
        for i = 1, #x do mx = math.max(mx, math.abs(x[i] - y[i])) end
        r.max_abs = mx
        local shape = x:shape()
        local n = shape[#shape] or #x
        if n >= 2 and n <= 100000 and #x // n <= 1024 then
          local ta, tb = argmax_rows(x, n), argmax_rows(y, n)
          local same = 0
          for i = 1, #ta do if ta[i] == tb[i] then same = same + 1 end end
          r.top1 = same / #ta
        end
      end
    end
    res[#res + 1] = r
  end
  return res
end

return M
