-- mlsh weights MODEL [--json] [--no-stats] — the compression inventory: every weight (uncompressed
-- consts and the final outputs of constexpr chains), what consumes it, how it is stored and
-- compressed, the spec/OS its form needs, and statistics of its decompressed values. Weights a
-- compressed model left uncompressed are flagged with the reason (below threshold, rank 1, group
-- size that does not divide the channels...). Exit 1 when the model (or a weight) cannot be read.
local mlsh = require "mlsh"
local json = mlsh.json
local compress = require "mlsh.compress"

local C = { summary = "list every weight: storage, compression, spec needed, decompressed statistics",
            usage = "mlsh weights MODEL [--json] [--no-stats] [--threshold N] [--delegate N]" }

local STAT_KEYS = { "min", "max", "mean", "std", "sparsity" }

local function jnum(v)
  if v == nil or v ~= v or v == math.huge or v == -math.huge then return json.null end
  return v
end

local function compression_json(d)
  if not d then return { kind = "none" } end
  local out = {}
  for k, v in pairs(d) do
    if k == "stages" then
      local st = {}
      for i, s in ipairs(v) do st[i] = compression_json(s) end
      out.stages = json.array(st)
    elseif k == "chain" then
      out.chain = json.array({ table.unpack(v) })
    elseif k == "n_m" then
      out.n_m = { n = v.n, m = v.m, dim = v.dim }
    elseif type(v) ~= "table" then
      out[k] = v
    else
      out[k] = v
    end
  end
  if (d.kind == "sparse" or d.kind == "joint") and d.n_m == nil then out.n_m = json.null end
  return out
end
C.compression_json = compression_json

-- One inventory entry as the JSON object of the contract.
function C.row(e, with_stats)
  local consumers = {}
  for i, u in ipairs(e.consumers or {}) do consumers[i] = { op = u.op, type = u.type, param = u.param } end
  local r = {
    name = e.name, ["function"] = e["function"] or json.null, op = e.op or e.layer or json.null,
    op_type = e.op_type or e.layer_type or json.null, consumers = json.array(consumers), dtype = e.dtype or json.null,
    shape = json.array({ table.unpack(e.shape or {}) }), count = e.count or json.null, storage = e.storage,
    bytes = e.bytes or json.null, dense_bytes = e.dense_bytes or json.null, compression = compression_json(e.compression),
    min_spec = e.min_spec or json.null, os = e.os or json.null, uncompressed_reason = e.uncompressed_reason or json.null,
  }
  for _, k in ipairs(STAT_KEYS) do r[k] = json.null end
  if with_stats then
    local ok, st = pcall(function() return e:stats() end)
    if ok then
      for _, k in ipairs(STAT_KEYS) do r[k] = jnum(st[k]) end
    else
      r.error = tostring(st):gsub("^[^\n:]+%.lua:%d+: ", "")
    end
  end
  return r
end

local function fmt_num(v)
  if v == nil or v == json.null then return "-" end
  if v == 0 then return "0" end
  if math.abs(v) >= 1e4 or math.abs(v) < 1e-3 then return string.format("%.2e", v) end
  return string.format("%.4f", v)
end

local function fmt_bytes(b)
  if type(b) ~= "number" then return "-" end
  if b >= 1 << 20 then return string.format("%.1f MiB", b / (1 << 20)) end
  if b >= 1 << 10 then return string.format("%.1f KiB", b / 1024) end
  return string.format("%d B", b)
end
C.fmt_bytes = fmt_bytes

-- Text table, columns padded to their widest cell.
function C.table(header, rows)
  local w = {}
  for i, h in ipairs(header) do w[i] = #h end
  for _, r in ipairs(rows) do
    for i, c in ipairs(r) do w[i] = math.max(w[i] or 0, utf8.len(c) or #c) end
  end
  local lines = {}
  local function line(cells)
    local parts = {}
    for i, c in ipairs(cells) do
      parts[i] = i == #cells and c or (c .. string.rep(" ", w[i] - (utf8.len(c) or #c)))
    end
    lines[#lines + 1] = table.concat(parts, "  ")
  end
  line(header)
  for _, r in ipairs(rows) do line(r) end
  return table.concat(lines, "\n")
end

function C.run(args)
  local as_json, stats, paths, threshold, delegate = false, true, {}, nil, nil
  local i = 1
  while args[i] do
    local a = args[i]
    if a == "--json" or a == "--format=json" then as_json = true
    elseif a == "--no-stats" then stats = false
    elseif a == "--threshold" or a == "--weight-threshold" then
      threshold = math.tointeger(tonumber(args[i + 1] or ""))
      if not threshold or threshold < 0 then io.stderr:write("mlsh weights: ", a, " needs a non-negative integer\n") return 2 end
      i = i + 1
    elseif a == "--delegate" then delegate = args[i + 1]; i = i + 1
    elseif a == "-h" or a == "--help" then print("usage: " .. C.usage) return 0
    elseif a:sub(1, 1) == "-" then io.stderr:write("mlsh weights: unknown option ", a, "\nusage: ", C.usage, "\n") return 2
    else paths[#paths + 1] = a end
    i = i + 1
  end
  if #paths ~= 1 then io.stderr:write("usage: ", C.usage, "\n") return 2 end
  local m, err = mlsh.try_load(paths[1], { delegate = delegate })
  if not m then io.stderr:write("mlsh: ", err, "\n") return 1 end
  local ok, inv = pcall(m.inventory, m, { threshold = threshold })
  if not ok then
    io.stderr:write("mlsh: ", paths[1], ": ", tostring(inv), "\n")
    m:close()
    return 1
  end
  local rc, rows, failed = 0, {}, 0
  for k, e in ipairs(inv) do
    rows[k] = C.row(e, stats)
    if rows[k].error then
      failed = failed + 1
      if failed <= 3 then io.stderr:write("mlsh: ", paths[1], ": weight ", e.name, ": ", rows[k].error, "\n") end
      rc = 1
    end
  end
  if failed > 3 then io.stderr:write(string.format("mlsh: %s: %d more weights could not be read\n", paths[1], failed - 3)) end
  if as_json then
    print(json.encode({ weights = json.array(rows), path = paths[1], spec_version = m.spec_version }, true))
  else
    local cells, flags = {}, {}
    local total, stored = 0, 0
    for k, r in ipairs(rows) do
      local e = inv[k]
      local cons = {}
      for _, u in ipairs(e.consumers or {}) do cons[#cons + 1] = u.type .. "." .. u.param end
      local comp = e.compression and compress.describe_compression(e.compression) or "none"
      if r.uncompressed_reason ~= json.null then
        comp = "none !"
        flags[#flags + 1] = string.format("  ! %s: %s", r.name, r.uncompressed_reason)
      end
      cells[#cells + 1] = { r.name, table.concat(cons, ","), tostring(r.dtype), "[" .. table.concat(e.shape or {}, "x") .. "]",
        tostring(r.storage), fmt_bytes(e.bytes), comp, e.os and (e.os .. " (" .. e.min_spec .. ")") or "-",
        fmt_num(r.min), fmt_num(r.max), fmt_num(r.mean), fmt_num(r.std),
        r.sparsity ~= json.null and string.format("%.1f%%", r.sparsity * 100) or "-" }
      total = total + (e.dense_bytes or e.bytes or 0)
      stored = stored + (e.bytes or 0)
    end
    print(C.table({ "weight", "consumers", "dtype", "shape", "storage", "bytes", "compression", "needs", "min", "max",
                    "mean", "std", "sparsity" }, cells))
    print(string.format("%d weights, %s stored (%s dense)", #rows, fmt_bytes(stored), fmt_bytes(total)))
    if #flags > 0 then
      print("left uncompressed in a compressed model:")
      print(table.concat(flags, "\n"))
    end
  end
  m:close()
  return rc
end

return C
