-- mlsh.diff.weights — the weights section of mlsh diff: weights added, removed and changed between
-- two models, with the compression form before -> after, bytes, and the SNR of B's values against
-- A's (both decompressed by mlsh's constexpr evaluator through w:values()).
--   local dw = require "mlsh.diff.weights"
--   local s = dw.compare(ma, mb)   -- {added, removed, changed, identical, bytes_before, bytes_after}
-- Logical weights come from m:inventory() (Core ML: consts and final constexpr outputs) or
-- m:weights() (ONNX initializers, NeuralNetwork parameters). Matching: the same function and name,
-- then coremltools' renamed forms (<w>_palettized, _quantized, _sparsified), then the same
-- consumer (op and parameter).
local mlsh = require "mlsh"

local M = {}

local function shape_text(s)
  if type(s) ~= "table" then return "?" end
  local p = {}
  for i, d in ipairs(s) do p[i] = tostring(d) end
  return "[" .. table.concat(p, ",") .. "]"
end

local function form(e)
  if not e.compression then
    if e.quantized then return "nn quantized" end
    return "none"
  end
  return mlsh.compress.describe_compression(e.compression)
end
M.form = form

-- The logical weights of m, each {entry, name, fn, key, consumer_key, form, bytes, count, dtype, shape}.
function M.list(m)
  local entries
  if m.format ~= "onnx" then
    local ok, inv = pcall(m.inventory, m)
    if ok then entries = inv end
  end
  entries = entries or m:weights()
  local out = {}
  for _, e in ipairs(entries) do
    local fn = e["function"] or e.layer and "main" or (m.format == "onnx" and "main") or "main"
    local c = e.consumers and e.consumers[1]
    out[#out + 1] = { entry = e, name = e.name, fn = fn, form = form(e), bytes = e.bytes or 0, count = e.count,
                      dtype = e.dtype, shape = e.shape,
                      consumer_key = c and (fn .. "\0" .. tostring(c.op) .. "\0" .. tostring(c.param)) or nil }
  end
  return out
end

local function metrics(a, b)
  local ok, va, vb = pcall(function() return a.entry:values(), b.entry:values() end)
  if not ok then return nil, tostring(va) end
  if #va ~= #vb then return nil, string.format("%d values before, %d after", #va, #vb) end
  local mt = mlsh.compress.metrics(va, vb)
  return mt
end

function M.compare(ma, mb, opts)
  opts = opts or {}
  local la, lb = M.list(ma), M.list(mb)
  local by_name, by_consumer, used = {}, {}, {}
  for _, w in ipairs(la) do
    by_name[w.fn .. "\0" .. w.name] = w
    local stripped = w.name:match("^(.-)_to_fp%d+$")
    if stripped then by_name[w.fn .. "\0" .. stripped] = by_name[w.fn .. "\0" .. stripped] or w end
    if w.consumer_key then by_consumer[w.consumer_key] = by_consumer[w.consumer_key] or w end
  end
  local original_name = mlsh.compress.original_name
  local s = { added = {}, removed = {}, changed = {}, identical = 0, bytes_before = 0, bytes_after = 0,
              count_before = #la, count_after = #lb }
  for _, w in ipairs(la) do s.bytes_before = s.bytes_before + w.bytes end
  for _, w in ipairs(lb) do
    s.bytes_after = s.bytes_after + w.bytes
    local a = by_name[w.fn .. "\0" .. w.name]
    if (not a or used[a]) and original_name then
      local base = original_name(w.name)
      a = base and by_name[w.fn .. "\0" .. base] or a
    end
    if (not a or used[a]) then
      local stripped = w.name:match("^(.-)_to_fp%d+$")
      a = stripped and by_name[w.fn .. "\0" .. stripped] or a
    end
    if (not a or used[a]) and w.consumer_key then a = by_consumer[w.consumer_key] end
    if (not a or used[a]) and w.entry.consumers and w.entry.consumers[1] and opts.old_op_name then
      -- the consumer was renamed (aligned by structure): look it up under its old name
      local c = w.entry.consumers[1]
      local old = opts.old_op_name(w.fn, c.op)
      a = old and by_consumer[w.fn .. "\0" .. old .. "\0" .. tostring(c.param)] or a
    end
    if not a or used[a] then
      s.added[#s.added + 1] = { name = w.name, ["function"] = w.fn, compression = w.form, bytes = w.bytes,
                                dtype = w.dtype, shape = shape_text(w.shape) }
    else
      used[a] = true
      local row = { name = w.name, before_name = a.name, ["function"] = w.fn, compression_before = a.form,
                    compression_after = w.form, bytes_before = a.bytes, bytes_after = w.bytes,
                    dtype_before = a.dtype, dtype_after = w.dtype, shape_before = shape_text(a.shape),
                    shape_after = shape_text(w.shape), what = {} }
      if a.name ~= w.name then row.what[#row.what + 1] = "renamed" end
      if a.form ~= w.form then row.what[#row.what + 1] = "compression" end
      if a.dtype ~= w.dtype then row.what[#row.what + 1] = "dtype" end
      if row.shape_before ~= row.shape_after then row.what[#row.what + 1] = "shape" end
      if a.bytes ~= w.bytes then row.what[#row.what + 1] = "bytes" end
      if a.count == w.count and not opts.no_values then
        local mt, err = metrics(a, w)
        if mt then
          row.snr_db, row.psnr_db, row.cosine, row.max_abs_err = mt.snr_db, mt.psnr_db, mt.cosine, mt.max_abs_err
          if mt.max_abs_err ~= 0 then row.what[#row.what + 1] = "values" end
        else
          row.error = err
          row.what[#row.what + 1] = "values unreadable"
        end
      end
      if #row.what > 0 then s.changed[#s.changed + 1] = row else s.identical = s.identical + 1 end
    end
  end
  for _, w in ipairs(la) do
    if not used[w] then
      s.removed[#s.removed + 1] = { name = w.name, ["function"] = w.fn, compression = w.form, bytes = w.bytes,
                                    dtype = w.dtype, shape = shape_text(w.shape) }
    end
  end
  table.sort(s.changed, function(x, y)
    local sx, sy = x.snr_db or math.huge, y.snr_db or math.huge
    if sx ~= sy then return sx < sy end
    return x.name < y.name
  end)
  s.changes = #s.added + #s.removed + #s.changed
  return s
end

return M
