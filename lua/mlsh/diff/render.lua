-- mlsh.diff.render — text, markdown and JSON of an mlsh.diff result (html: mlsh.report.html).
--   render.text(r) / render.markdown(r) -> string;  render.json(r) -> table for mlsh.json.encode
-- Lists are capped in text and markdown (LIMIT rows per list, "… N more"); JSON has everything.
local json = require "mlsh.json"

local M = { LIMIT = 40 }

local function num(v, fmt)
  if v == nil then return "-" end
  if v == math.huge then return "inf" end
  if v ~= v then return "nan" end
  return string.format(fmt or "%.2f", v)
end
M.num = num

local function pct(v) return v and string.format("%.1f%%", v * 100) or "-" end

local function bytes(n)
  if not n then return "-" end
  if n >= 1048576 then return string.format("%.2f MB", n / 1048576) end
  if n >= 1024 then return string.format("%.1f KB", n / 1024) end
  return tostring(n) .. " B"
end
M.bytes = bytes

-- Each section as a list of lines {text}; shared by text and markdown (markdown bullets them).
local LINES = {}

function LINES.io(s)
  local out = {}
  for _, it in ipairs(s.items) do
    if it.change == "added" then out[#out + 1] = string.format("+ %s %s: %s", it.kind, it.name, it.after)
    elseif it.change == "removed" then out[#out + 1] = string.format("- %s %s: %s", it.kind, it.name, it.before)
    else out[#out + 1] = string.format("~ %s %s: %s -> %s", it.kind, it.name, it.before, it.after) end
  end
  return out
end

function LINES.spec(s)
  local out = {}
  for _, it in ipairs(s.items) do
    out[#out + 1] = string.format("~ %s: %s -> %s", it.field, it.before or "(none)", it.after or "(none)")
  end
  return out
end

function LINES.histogram(s)
  local out = { string.format("ops: %d -> %d", s.total_before, s.total_after) }
  for _, it in ipairs(s.items) do
    out[#out + 1] = string.format("%s %-28s %5d -> %-5d (%+d)", it.delta > 0 and "+" or "-", it.type, it.before, it.after, it.delta)
  end
  return out
end

function LINES.ops(s)
  local out = { string.format("aligned %d by name, %d by structure; %d added, %d removed, %d changed",
    s.aligned_by_name, s.aligned_by_structure, #s.added, #s.removed, #s.changed) }
  for _, o in ipairs(s.added) do out[#out + 1] = string.format("+ %s %s (%s)", o["function"], o.name, o.type) end
  for _, o in ipairs(s.removed) do out[#out + 1] = string.format("- %s %s (%s)", o["function"], o.name, o.type) end
  for _, o in ipairs(s.changed) do
    local label = o.before_name ~= o.name and (o.before_name .. " -> " .. o.name) or o.name
    out[#out + 1] = string.format("~ %s %s (%s): %s", o["function"], label, o.type, table.concat(o.what, "; "))
  end
  return out
end

function LINES.dtypes(s)
  local out, keys = {}, {}
  for k in pairs(s.pairs) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do out[#out + 1] = string.format("%s: %d op outputs", k, s.pairs[k]) end
  for _, it in ipairs(s.items) do
    out[#out + 1] = string.format("~ %s %s (%s) %s: %s -> %s", it["function"], it.op, it.type, it.output or "", it.before, it.after)
  end
  return out
end

function LINES.weights(s)
  local out = { string.format("%d -> %d weights, %s -> %s; %d identical, %d added, %d removed, %d changed",
    s.count_before, s.count_after, bytes(s.bytes_before), bytes(s.bytes_after), s.identical, #s.added, #s.removed, #s.changed) }
  for _, w in ipairs(s.added) do out[#out + 1] = string.format("+ %s %s (%s, %s)", w["function"], w.name, w.compression, bytes(w.bytes)) end
  for _, w in ipairs(s.removed) do out[#out + 1] = string.format("- %s %s (%s, %s)", w["function"], w.name, w.compression, bytes(w.bytes)) end
  for _, w in ipairs(s.changed) do
    local label = w.before_name ~= w.name and (w.before_name .. " -> " .. w.name) or w.name
    out[#out + 1] = string.format("~ %s %s: %s -> %s, %s -> %s, SNR %s dB [%s]", w["function"], label,
      w.compression_before, w.compression_after, bytes(w.bytes_before), bytes(w.bytes_after), num(w.snr_db),
      table.concat(w.what, ","))
  end
  return out
end

function LINES.required_spec(s)
  local out = { string.format("required spec: %s -> %s", tostring(s.before), tostring(s.after)) }
  for _, x in ipairs(s.appeared) do out[#out + 1] = string.format("+ spec %d: %s", x.spec, x.what) end
  for _, x in ipairs(s.gone) do out[#out + 1] = string.format("- spec %d: %s", x.spec, x.what) end
  return out
end

function LINES.placement(s)
  local b, a = s.before, s.after
  local out = {
    string.format("ANE coverage: %s -> %s of ops, %s -> %s of work", pct(b.ane_ops), pct(a.ane_ops), pct(b.ane_work), pct(a.ane_work)),
    string.format("segments: %d -> %d, switches: %d -> %d", b.segments, a.segments, b.transitions, a.transitions),
    string.format("ops on ANE/GPU/CPU: %d/%d/%d -> %d/%d/%d", b.devices.ANE, b.devices.GPU, b.devices.CPU,
      a.devices.ANE, a.devices.GPU, a.devices.CPU),
  }
  for _, o in ipairs(s.moved) do
    out[#out + 1] = string.format("~ %s %s (%s): %s -> %s: %s", tostring(o["function"] or "main"), o.op, o.type, o.before, o.after, o.reason)
  end
  return out
end

function LINES.ep(s)
  local b, a = s.before, s.after
  local out = { string.format("partitions: %d -> %d; nodes on CoreML: %d/%d -> %d/%d", b.partitions, a.partitions,
    b.supported_nodes, b.nodes, a.supported_nodes, a.nodes),
    string.format("partition sizes: [%s] -> [%s]", table.concat(b.partition_sizes, ", "), table.concat(a.partition_sizes, ", ")) }
  for _, n in ipairs(s.taken) do out[#out + 1] = string.format("+ now on CoreML: %s (%s)", n.node, n.op) end
  for _, n in ipairs(s.dropped) do out[#out + 1] = string.format("- now off CoreML: %s (%s): %s", n.node, n.op, tostring(n.reason)) end
  return out
end

function LINES.findings(s)
  local b, a = s.before, s.after
  local out = { string.format("errors/warnings/info: %d/%d/%d -> %d/%d/%d", b.error, b.warning, b.info, a.error, a.warning, a.info) }
  for _, f in ipairs(s.appeared) do out[#out + 1] = string.format("+ %s [%s]: %s", f.rule, f.severity, f.message) end
  for _, f in ipairs(s.gone) do out[#out + 1] = string.format("- %s [%s]: %s", f.rule, f.severity, f.message) end
  return out
end

M.LINES = LINES

local function capped(lines, first_summary, limit)
  local out, n = {}, 0
  for i, l in ipairs(lines) do
    if i <= first_summary then out[#out + 1] = l
    else
      n = n + 1
      if n <= limit then out[#out + 1] = l end
    end
  end
  if n > limit then out[#out + 1] = string.format("… %d more", n - limit) end
  return out
end

local SUMMARY_LINES = { histogram = 1, ops = 1, weights = 1, required_spec = 1, placement = 3, ep = 2, findings = 1 }

local function status(sec)
  if sec.changes == 0 then return "no change" end
  return string.format("%d change%s%s", sec.changes, sec.changes == 1 and "" or "s", sec.ignored and ", ignored" or "")
end

function M.text(r, o)
  o = o or {}
  local limit = o.limit or M.LIMIT
  local out = { string.format("mlsh diff %s -> %s", r.a.path, r.b.path) }
  for _, id in ipairs(r.order) do
    local sec = r.sections[id]
    out[#out + 1] = ""
    out[#out + 1] = string.format("%s (%s)", sec.title, status(sec))
    for _, l in ipairs(capped(LINES[id](sec), SUMMARY_LINES[id] or 0, limit)) do out[#out + 1] = "  " .. l end
  end
  out[#out + 1] = ""
  out[#out + 1] = r.differences == 0 and "no differences" or string.format("%d difference%s", r.differences, r.differences == 1 and "" or "s")
  return table.concat(out, "\n") .. "\n"
end

local function md_escape(s) return "`" .. (tostring(s):gsub("`", "'")) .. "`" end

function M.markdown(r, o)
  o = o or {}
  local limit = o.limit or M.LIMIT
  local out = { string.format("# mlsh diff: `%s` → `%s`", r.a.path, r.b.path), "",
                "| section | status |", "|---|---|" }
  for _, id in ipairs(r.order) do
    local sec = r.sections[id]
    out[#out + 1] = string.format("| %s | %s |", sec.title, status(sec))
  end
  out[#out + 1] = ""
  out[#out + 1] = r.differences == 0 and "**No differences.**" or string.format("**%d difference%s.**", r.differences, r.differences == 1 and "" or "s")
  for _, id in ipairs(r.order) do
    local sec = r.sections[id]
    out[#out + 1] = ""
    out[#out + 1] = "## " .. sec.title
    out[#out + 1] = ""
    local lines = capped(LINES[id](sec), SUMMARY_LINES[id] or 0, limit)
    if #lines == 0 then out[#out + 1] = "No change." end
    for _, l in ipairs(lines) do out[#out + 1] = "- " .. md_escape(l) end
  end
  return table.concat(out, "\n") .. "\n"
end

-- ---- JSON -------------------------------------------------------------------------------------------
local function jnum(v)
  if v == nil then return json.null end
  if v ~= v or v == math.huge or v == -math.huge then return json.null end
  if math.type(v) == "integer" then return v end
  return math.floor(v * 10000 + 0.5) / 10000
end

local function jlist(list, fn)
  local out = json.array({})
  for i, x in ipairs(list or {}) do out[i] = fn and fn(x) or x end
  return out
end

local function copy_rounded(t)
  if type(t) ~= "table" then
    if type(t) == "number" then return jnum(t) end
    return t
  end
  local out = {}
  for k, v in pairs(t) do out[k] = copy_rounded(v) end
  if #t > 0 then return json.array(out) end
  return out
end

local JSON = {}
local function db(v) return v == math.huge and "inf" or string.format("%.2f", v) end
function LINES.outputs(s)
  local out = {}
  for _, it in ipairs(s.items) do
    if it.missing then out[#out + 1] = string.format("- %s: missing from one side", it.name)
    else
      out[#out + 1] = string.format("%s %s: SNR %s dB, max |err| %.4g%s", it.snr_db == math.huge and "=" or "~", it.name,
        db(it.snr_db), it.max_abs_err, it.top1_agreement and string.format(", top-1 agreement %.1f%%", 100 * it.top1_agreement) or "")
    end
  end
  if s.first_below then
    out[#out + 1] = string.format("first op below %.4g dB: %s (%s), %s dB", s.threshold, s.first_below.op, s.first_below.type,
      db(s.first_below.snr_db))
  elseif s.ops_matched > 0 then
    out[#out + 1] = string.format("every op matched by name (%d) at or above %.4g dB", s.ops_matched, s.threshold)
  end
  return out
end
local function jdb(v) return (v == nil or v ~= v) and json.null or (v == math.huge and "inf" or v) end
function JSON.outputs(s)
  local items = json.array({})
  for i, it in ipairs(s.items) do
    items[i] = { name = it.name, snr_db = jdb(it.snr_db), max_abs_err = jdb(it.max_abs_err),
                 top1_agreement = jdb(it.top1_agreement), missing = it.missing }
  end
  local fb = s.first_below and { op = s.first_below.op, type = s.first_below.type, snr_db = jdb(s.first_below.snr_db) }
  return { items = items, threshold = s.threshold, ops_matched = s.ops_matched, first_below = fb or json.null }
end
function JSON.io(s) return { items = jlist(s.items, copy_rounded) } end
function JSON.spec(s) return { items = jlist(s.items, copy_rounded) } end
function JSON.histogram(s) return { total_before = s.total_before, total_after = s.total_after, items = jlist(s.items, copy_rounded) } end
function JSON.ops(s)
  local function change(o)
    return { ["function"] = o["function"], name = o.name, before_name = o.before_name, type = o.type, by = o.by, what = jlist(o.what) }
  end
  return { aligned_by_name = s.aligned_by_name, aligned_by_structure = s.aligned_by_structure, renamed = s.renamed,
           added = jlist(s.added, copy_rounded), removed = jlist(s.removed, copy_rounded), changed = jlist(s.changed, change) }
end
function JSON.dtypes(s) return { pairs = json.object(copy_rounded(s.pairs)), items = jlist(s.items, copy_rounded) } end
function JSON.weights(s)
  local function row(w)
    return { name = w.name, before_name = w.before_name, ["function"] = w["function"],
             compression_before = w.compression_before, compression_after = w.compression_after,
             bytes_before = w.bytes_before, bytes_after = w.bytes_after, dtype_before = w.dtype_before or json.null,
             dtype_after = w.dtype_after or json.null, shape_before = w.shape_before, shape_after = w.shape_after,
             snr_db = jnum(w.snr_db), psnr_db = jnum(w.psnr_db), cosine = jnum(w.cosine), max_abs_err = jnum(w.max_abs_err),
             what = jlist(w.what), error = w.error }
  end
  return { count_before = s.count_before, count_after = s.count_after, bytes_before = s.bytes_before, bytes_after = s.bytes_after,
           identical = s.identical, added = jlist(s.added, copy_rounded), removed = jlist(s.removed, copy_rounded),
           changed = jlist(s.changed, row) }
end
function JSON.required_spec(s)
  return { before = s.before, after = s.after, appeared = jlist(s.appeared, copy_rounded), gone = jlist(s.gone, copy_rounded) }
end
function JSON.placement(s)
  local function sum(x)
    return { ane_ops = jnum(x.ane_ops), ane_work = jnum(x.ane_work), segments = x.segments, transitions = x.transitions,
             ops = x.ops, devices = x.devices }
  end
  return { before = sum(s.before), after = sum(s.after), moved = jlist(s.moved, copy_rounded) }
end
function JSON.ep(s)
  local function sum(x) local c = copy_rounded(x) c.partition_sizes = jlist(x.partition_sizes) return c end
  return { before = sum(s.before), after = sum(s.after), taken = jlist(s.taken, copy_rounded), dropped = jlist(s.dropped, copy_rounded) }
end
function JSON.findings(s)
  return { before = s.before, after = s.after, appeared = jlist(s.appeared, copy_rounded), gone = jlist(s.gone, copy_rounded) }
end

function M.json(r)
  local sections = {}
  for _, id in ipairs(r.order) do
    local sec = r.sections[id]
    local j = JSON[id](sec)
    j.title, j.changes, j.ignored = sec.title, sec.changes, sec.ignored
    sections[id] = j
  end
  return { a = r.a, b = r.b, kind = r.kind, differences = r.differences, sections = sections, order = jlist(r.order) }
end

return M
