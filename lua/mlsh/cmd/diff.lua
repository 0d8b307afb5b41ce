-- mlsh diff A B — what changed between two models: I/O, spec/OS/opsets, op histogram, op-by-op
-- alignment, dtypes, weights (compression form, SNR), required-spec reasons, predicted placement
-- (Core ML) or CoreML EP partitions (ONNX), rule findings, and with --outputs the outputs of both
-- models run by the interpreter on the same inputs (SNR, first diverging op). docs/diff.md.
-- A side that is a container (an ExecuTorch .pte, ORT's cache folder) stands for its Core ML model
-- (the first, or the one --delegate N selects).
-- Exit status (for CI): 0 no difference, 1 differences (outside --ignore'd sections), 2 an error
-- (bad usage, an unreadable model, a Core ML / ONNX mix, an unwritable -o file).
local mlsh = require "mlsh"
local json = mlsh.json

local C = {
  summary = "what changed between two models (sections, --format text|json|markdown|html; exit 0 same, 1 differs)",
  usage = "mlsh diff A B [--format text|json|markdown|html] [--ignore SECTION,...] [--compute-units UNITS] [--static]\n"
    .. "                [-o FILE] [--outputs [--input NAME=FILE]... [--random SEED] [--threshold DB]] [--delegate N]\n"
    .. "  sections: io, spec, histogram, ops, dtypes, weights, required_spec, placement, ep, findings, outputs",
}

local FORMATS = { text = true, json = true, markdown = true, html = true }

local function fail(msg)
  io.stderr:write("mlsh diff: ", msg, "\n")
  return 2
end

function C.parse_args(args)
  local o = { paths = {}, format = "text", ignore = {}, inputs = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    local function value()
      if inline then return inline end
      i = i + 1
      return args[i]
    end
    if name == "--format" or name == "--ignore" or name == "--compute-units" or name == "-o" or name == "--output"
       or name == "--input" or name == "--random" or name == "--threshold" or name == "--delegate" then
      local v = value()
      if v == nil then return nil, name .. " needs a value" end
      if name == "--format" then o.format = v
      elseif name == "--delegate" then o.delegate = v
      elseif name == "--input" then
        local k, f = v:match("^([^=]+)=(.+)$")
        if not k then return nil, "--input takes NAME=FILE" end
        o.inputs[k] = f
      elseif name == "--random" then
        o.random = math.tointeger(tonumber(v))
        if not o.random then return nil, "--random takes an integer seed" end
      elseif name == "--threshold" then
        o.threshold = tonumber(v)
        if not o.threshold then return nil, "--threshold takes a number of dB" end
      elseif name == "--ignore" then
        local ig, err = require("mlsh.diff").parse_ignore(v)
        if not ig then return nil, err end
        for k in pairs(ig) do o.ignore[k] = true end
      elseif name == "--compute-units" then o.compute_units = v
      else o.output = v end
    elseif a == "--json" then o.format = "json"
    elseif a == "--outputs" then o.outputs = true
    elseif a == "--static" or a == "--no-calibrated" then o.calibrated = false -- placement's first stage only
    elseif a == "--calibrated" then o.calibrated = true -- the default
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then return nil, "unknown option " .. a
    else o.paths[#o.paths + 1] = a end
    i = i + 1
  end
  if not FORMATS[o.format] then return nil, "unknown --format '" .. o.format .. "' (text, json, markdown or html)" end
  return o
end

local function write_out(path, text)
  local ok, err = mlsh.core.fs.write_atomic(path, text)
  if not ok then return nil, path .. ": " .. tostring(err) end
  return true
end

function C.run(args)
  local o, err = C.parse_args(args)
  if not o then return fail(err .. "\nusage: " .. C.usage) end
  if o.help then print("usage: " .. C.usage) return 0 end
  if #o.paths ~= 2 then return fail("expected two models, got " .. #o.paths .. "\nusage: " .. C.usage) end
  local cu, cerr = mlsh.placement.compute_units(o.compute_units)
  if not cu then return fail(cerr) end
  o.compute_units = cu
  local models = {}
  for k, p in ipairs(o.paths) do
    local m, lerr = mlsh.try_load(p, { delegate = o.delegate }) -- a .pte or ORT cache: its (Nth) Core ML model
    if not m then
      for _, x in ipairs(models) do x:close() end
      io.stderr:write("mlsh: ", lerr, "\n")
      return 2
    end
    models[k] = m
  end
  local outputs = o.outputs and { inputs = o.inputs, random = o.random, threshold = o.threshold } or nil
  local ok, r = pcall(require("mlsh.diff").compare, models[1], models[2],
    { ignore = o.ignore, compute_units = cu, outputs = outputs, calibrated = o.calibrated })
  local text
  if ok then
    ok, text = pcall(function()
      local render = require "mlsh.diff.render"
      if o.format == "json" then return json.encode(render.json(r), true) .. "\n"
      elseif o.format == "markdown" then return render.markdown(r)
      elseif o.format == "html" then return require("mlsh.report.html").diff(r, models[1], models[2])
      end
      return render.text(r)
    end)
  else
    text = r
  end
  for _, x in ipairs(models) do x:close() end
  if not ok then
    io.stderr:write("mlsh: ", tostring(text), "\n")
    return 2
  end
  if o.output then
    local wok, werr = write_out(o.output, text)
    if not wok then return fail(werr) end
  else
    io.write(text)
  end
  return r.differences > 0 and 1 or 0
end

return C
