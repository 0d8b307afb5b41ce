-- mlsh.compare_outputs — `mlsh compare A B --outputs`: run both models on the same inputs with the
-- interpreter and report, per output, the SNR of B against A, the max |A - B| and, for outputs
-- that look like class scores, top-1 agreement. When op names match (a compressed model, an fp16
-- conversion, a surgery result), the per-op divergence table (first output of each op present in
-- both with the same shape) names the first op whose SNR falls below --threshold.
--   mlsh compare A B --outputs [--input NAME=FILE]... [--random SEED] [--samples N] [--threshold DB]
--                    [--precision model|fp32|fp16] [--json] [--ops]
local mlsh = require "mlsh"
local run = require "mlsh.run"
local json = mlsh.json

local M = {}
M.usage = "mlsh compare A B --outputs [--input NAME=FILE]... [--random SEED] [--samples N] [--threshold DB (default 30)] "
  .. "[--precision model|fp32|fp16] [--json] [--ops]"

local function parse(args)
  local o = { paths = {}, inputs = {}, samples = 1, threshold = 30, precision = "model" }
  local i = 1
  local function val()
    i = i + 1
    return args[i] or error("option " .. args[i - 1] .. " needs a value", 0)
  end
  while args[i] do
    local a = args[i]
    if a == "--outputs" then o.outputs = true
    elseif a == "--input" then
      local k, v = val():match("^([^=]+)=(.+)$")
      if not k then error("--input takes NAME=FILE", 0) end
      o.inputs[k] = v
    elseif a == "--random" then o.random = math.tointeger(tonumber(val())) or error("--random takes an integer", 0)
    elseif a == "--samples" then o.samples = math.tointeger(tonumber(val())) or error("--samples takes an integer", 0)
    elseif a == "--threshold" then o.threshold = tonumber(val()) or error("--threshold takes dB", 0)
    elseif a == "--precision" then o.precision = val()
    elseif a == "--json" then o.json = true
    elseif a == "--ops" then o.ops = true
    elseif a:sub(1, 1) == "-" then error("unknown option " .. a, 0)
    else o.paths[#o.paths + 1] = a end
    i = i + 1
  end
  if #o.paths ~= 2 then error("two models needed", 0) end
  if next(o.inputs) == nil and not o.random then o.random = 0 end
  return o
end

-- Accumulate sum e^2, sum d^2, max |d| of b against a.
local function accumulate(acc, a, b)
  local x, y = a:array(), b:array()
  if #x ~= #y then acc.mismatch = true return end
  for i = 1, #x do
    local d = x[i] - y[i]
    acc.s, acc.e = acc.s + x[i] * x[i], acc.e + d * d
    if math.abs(d) > acc.max then acc.max = math.abs(d) end
  end
end

local function snr_of(acc)
  if acc.mismatch then return nil end
  if acc.e == 0 then return math.huge end
  if acc.s == 0 then return -math.huge end
  return 10 * math.log(acc.s / acc.e, 10)
end

local function jnum(v) return (v == nil or v ~= v or v == math.huge or v == -math.huge) and json.null or v end

function M.compare(ma, mb, o)
  local per_out, per_op, order, top = {}, {}, {}, {}
  for s = 1, o.samples do
    local opts = { precision = o.precision, random = o.random and (o.random + (s - 1) * 1000), keep = true }
    local outs_a, ia = run.run(ma, o.inputs, opts)
    local outs_b, ib = run.run(mb, o.inputs, opts)
    for _, r in ipairs(run.compare(outs_a, outs_b)) do
      local acc = per_out[r.name] or { s = 0, e = 0, max = 0, top1 = {} }
      per_out[r.name] = acc
      if r.missing then acc.missing = true
      else
        accumulate(acc, outs_a[r.name], outs_b[r.name])
        if r.top1 then acc.top1[#acc.top1 + 1] = r.top1 end
      end
    end
    local by_name = {}
    for _, t in ipairs(ib.trace) do by_name[t.op] = t end
    for _, t in ipairs(ia.trace) do
      local u = by_name[t.op]
      local ta, tb = t.outputs[1] and t.outputs[1].tensor, u and u.outputs[1] and u.outputs[1].tensor
      if t.type ~= "const" and ta and tb and #ta == #tb then
        local acc = per_op[t.op]
        if not acc then
          acc = { s = 0, e = 0, max = 0, type = t.type }
          per_op[t.op] = acc
          order[#order + 1] = t.op
        end
        accumulate(acc, ta, tb)
      end
    end
    top = ia
  end
  local outputs, first = {}, nil
  local names = {}
  for k in pairs(per_out) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local acc = per_out[k]
    local t1
    if #acc.top1 > 0 then
      t1 = 0
      for _, v in ipairs(acc.top1) do t1 = t1 + v end
      t1 = t1 / #acc.top1
    end
    outputs[#outputs + 1] = { name = k, snr = not acc.missing and snr_of(acc) or nil, max_abs = acc.max, top1 = t1, missing = acc.missing }
  end
  local ops = {}
  for _, name in ipairs(order) do
    local acc = per_op[name]
    local snr = snr_of(acc)
    ops[#ops + 1] = { op = name, type = acc.type, snr = snr, max_abs = acc.max }
    if not first and snr and snr < o.threshold then first = ops[#ops] end
  end
  local _ = top
  return outputs, ops, first
end

function M.run(args)
  local ok, o = pcall(parse, args)
  if not ok then io.stderr:write("mlsh compare: ", o, "\nusage: ", M.usage, "\n") return 2 end
  local ma, err = mlsh.try_load(o.paths[1])
  if not ma then io.stderr:write("mlsh: ", err, "\n") return 1 end
  local mb, err2 = mlsh.try_load(o.paths[2])
  if not mb then ma:close() io.stderr:write("mlsh: ", err2, "\n") return 1 end
  local okc, outputs, ops, first = pcall(M.compare, ma, mb, o)
  ma:close()
  mb:close()
  if not okc then io.stderr:write("mlsh compare: ", tostring(outputs), "\n") return 1 end
  if o.json then
    local jo, jops = {}, {}
    for k, r in ipairs(outputs) do jo[k] = { name = r.name, snr_db = jnum(r.snr), max_abs_err = jnum(r.max_abs), top1_agreement = jnum(r.top1), missing = r.missing or false } end
    for k, r in ipairs(ops) do jops[k] = { op = r.op, type = r.type, snr_db = jnum(r.snr), max_abs_err = jnum(r.max_abs) } end
    print(json.encode({ a = o.paths[1], b = o.paths[2], samples = o.samples, threshold = o.threshold, outputs = json.array(jo),
      ops = json.array(jops), first_below = first and { op = first.op, type = first.type, snr_db = jnum(first.snr) } or json.null }, true))
    return 0
  end
  print(string.format("outputs of %s against %s (%d sample%s, precision %s):", o.paths[2], o.paths[1], o.samples, o.samples == 1 and "" or "s", o.precision))
  for _, r in ipairs(outputs) do
    if r.missing then print(string.format("  %s: missing from %s", r.name, o.paths[2]))
    else
      print(string.format("  %-24s SNR %s dB  max|err| %.4g%s", r.name, r.snr == math.huge and "inf" or string.format("%.2f", r.snr or 0 / 0),
        r.max_abs, r.top1 and string.format("  top-1 agreement %.1f%%", 100 * r.top1) or ""))
    end
  end
  if #ops > 0 then
    if first then print(string.format("first op below %.4g dB: %s (%s), %.2f dB", o.threshold, first.op, first.type, first.snr))
    else print(string.format("every matched op at or above %.4g dB (%d ops matched by name)", o.threshold, #ops)) end
    if o.ops then
      for _, r in ipairs(ops) do
        print(string.format("  %-32s %-20s %s dB", r.op, r.type, r.snr == math.huge and "inf" or string.format("%.2f", r.snr)))
      end
    end
  end
  return 0
end

return M
