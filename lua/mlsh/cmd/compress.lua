-- mlsh compress MODEL -o OUT — palettize, quantize or prune an ML program's weights with mlsh's C
-- kernels and write the constexpr ops coremltools writes for the model's target. Prints a
-- per-weight table (or --json); a progress bar on a terminal. Exit 0 ok, 1 unreadable model or
-- write failure, 2 bad usage (unknown flag, bad nbits, a mode the model's target cannot hold).
local mlsh = require "mlsh"
local compress = require "mlsh.compress"
local check = require "mlsh.compress_check"
-- mlsh.json and mlsh.cmd.weights (table layout) are loaded by the report that needs them: a
-- --quiet run prints nothing (start-up cost)

local C = {
  summary = "palettize / quantize / prune weights (coremltools-compatible constexpr ops)",
  usage = table.concat({
    "mlsh compress MODEL (-o OUT | --in-place) [options]",
    "  --palettize [N] [--mode kmeans|uniform|unique] [--granularity per-tensor|per-grouped-channel --group-size G]",
    "                  [--per-channel-scale]",
    "  --quantize int8|uint8|int4|uint4 [--symmetric | --affine] [--per-channel | --per-tensor | --per-block B]",
    "  --prune SPARSITY | --n-m N:M [--block B] [--dim 0|1] | --prune-threshold T",
    "  --weight-threshold N (default 2048)   --config FILE.lua (per-op-type / per-op-name settings)",
    "  --json   --quiet   --dry-run   --threads N",
    "  --check-outputs [--random SEED] [--samples N] [--input NAME=FILE]...  (output SNR vs the original)",
  }, "\n"),
}

local PREFAULT_MIN, PREFAULT_MAX = 4 << 20, 64 << 20 -- weight files worth it; at most this much

local function usage_fail(msg)
  io.stderr:write("mlsh compress: ", msg, "\n")
  return 2
end

-- The option table: flag -> function(st, flag). st.o is the result; st:value(flag) takes the next
-- argument; st:int / st:num convert; st:pal() / st:quant() / st:prune() the policy sections.
local P = {}
function P:value(flag)
  local v = self.args[self.i + 1]
  if v == nil then error(flag .. " needs a value", 0) end
  self.i = self.i + 1
  return v
end
function P:num(flag)
  local v = self:value(flag)
  local n = tonumber(v)
  if not n then error(string.format("%s needs a number (got %s)", flag, v), 0) end
  return n
end
function P:int(flag)
  local v = self:value(flag)
  local n = math.tointeger(tonumber(v))
  if not n then error(string.format("%s needs an integer (got %s)", flag, v), 0) end
  return n
end
for _, k in ipairs({ "pal", "quant", "prune" }) do
  P[k] = function(self)
    self[k .. "_t"] = self[k .. "_t"] or {}
    return self[k .. "_t"]
  end
end
P.__index = P

local function palettize_flag(st, a)
  local pal = st:pal()
  local v = st.args[st.i + 1]
  if v and not v:match("^%-%-") and tonumber(v) then
    pal.nbits = st:int(a)
  elseif v == "unique" then
    pal.mode = "unique"
    st.i = st.i + 1
  elseif v and v:match("^%d") then
    error(string.format("--palettize needs the number of bits: 1, 2, 3, 4, 6 or 8 (got %s)", v), 0)
  end
end

local OPTIONS = {
  ["-o"] = function(st, a) st.o.out = st:value(a) end,
  ["--in-place"] = function(st) st.o.in_place = true end,
  ["--palettize"] = palettize_flag,
  ["--mode"] = function(st, a) st:pal().mode = st:value(a) end,
  ["--granularity"] = function(st, a) st:pal().granularity = st:value(a) end,
  ["--group-size"] = function(st, a) st:pal().group_size = st:int(a) end,
  ["--per-channel-scale"] = function(st) st:pal().per_channel_scale = true end,
  ["--quantize"] = function(st, a) st:quant().dtype = st:value(a) end,
  ["--symmetric"] = function(st) st:quant().symmetric = true end,
  ["--affine"] = function(st) st:quant().symmetric = false end,
  ["--per-channel"] = function(st) st:quant().granularity = "per_channel" end,
  ["--per-tensor"] = function(st) st:quant().granularity = "per_tensor" end,
  ["--per-block"] = function(st, a)
    local q = st:quant()
    q.granularity, q.block_size = "per_block", st:int(a)
  end,
  ["--prune"] = function(st, a) st:prune().sparsity = st:num(a) end,
  ["--n-m"] = function(st, a) st:prune().n_m = st:value(a) end,
  ["--block"] = function(st, a) st:prune().block_size = st:int(a) end,
  ["--dim"] = function(st, a) st:prune().dim = st:int(a) end,
  ["--prune-threshold"] = function(st, a)
    local p = st:prune()
    p.mode, p.threshold = "threshold", st:num(a)
  end,
  ["--weight-threshold"] = function(st, a) st.o.policy.weight_threshold = st:int(a) end,
  ["--config"] = function(st, a) st.o.config = st:value(a) end,
  ["--json"] = function(st) st.o.json = true end,
  ["--quiet"] = function(st) st.o.quiet = true end,
  ["--dry-run"] = function(st) st.o.dry_run = true end,
  ["--threads"] = function(st, a) st.o.threads = st:int(a) end,
  ["--help"] = function(st) st.o.help = true end,
}
check.add_flags(OPTIONS)
OPTIONS["--output"], OPTIONS["--no-symmetric"], OPTIONS["-q"], OPTIONS["-h"] =
  OPTIONS["-o"], OPTIONS["--affine"], OPTIONS["--quiet"], OPTIONS["--help"]

-- The options that only make sense together, checked once all are read.
local function check_combination(o, pal, quant, prune)
  if pal and pal.nbits == nil and pal.mode ~= "unique" then
    error("--palettize needs the number of bits (1, 2, 3, 4, 6 or 8), or --mode unique", 0)
  end
  if quant and not quant.dtype then error("--symmetric/--affine/--per-* need --quantize DTYPE", 0) end
  if prune then
    if prune.n_m and prune.sparsity then
      local n, m = tostring(prune.n_m):match("^(%d+):(%d+)$")
      if not n or math.abs(prune.sparsity - tonumber(n) / tonumber(m)) > 1e-9 then
        error(string.format("--prune %s and --n-m %s disagree (n:m prunes n of every m)", prune.sparsity, prune.n_m), 0)
      end
      prune.sparsity = nil
    end
    if prune.block_size == nil and prune.dim == nil and prune.sparsity == nil and prune.n_m == nil and prune.mode ~= "threshold" then
      error("--block/--dim need --prune SPARSITY", 0)
    end
  end
  o.policy.palettize, o.policy.quantize, o.policy.prune = pal, quant, prune
end

-- Parse args into {model, out, in_place, policy fields, run options}; raises the usage message.
function C.parse(args)
  local st = setmetatable({ args = args, i = 1, o = { policy = {} } }, P)
  local o, paths = st.o, {}
  while args[st.i] do
    local a = args[st.i]
    local handler = OPTIONS[a]
    if handler then handler(st, a)
    elseif a:sub(1, 1) == "-" and a ~= "-" then error("unknown option " .. a, 0)
    else paths[#paths + 1] = a end
    st.i = st.i + 1
  end
  if o.help then return o end
  if #paths ~= 1 then error("give exactly one MODEL", 0) end
  o.model = paths[1]
  if o.in_place then
    if o.out then error("give either -o OUT or --in-place", 0) end
    o.out = o.model
  end
  if not o.out and not o.dry_run then error("give -o OUT (or --in-place, or --dry-run)", 0) end
  if o.check and o.dry_run then error("--check-outputs runs the written model: not with --dry-run", 0) end
  check_combination(o, st.pal_t, st.quant_t, st.prune_t)
  return o
end

local function fmt_snr(v)
  if v == nil then return "-" end
  if v == math.huge then return "inf" end
  return string.format("%.2f", v)
end

function C.report_text(report, out_path, dry)
  local wcmd = require "mlsh.cmd.weights"
  local cells = {}
  for _, r in ipairs(report.weights) do
    if r.status ~= "ineligible" or r.reason ~= "rank 1 (coremltools skips rank <= 1 consts)" then
      cells[#cells + 1] = { r.name, "[" .. table.concat(r.shape or {}, "x") .. "]", r.setting or "-", r.form or "-",
        wcmd.fmt_bytes(r.bytes_before) .. " -> " .. wcmd.fmt_bytes(r.bytes_after), fmt_snr(r.snr_db),
        r.status .. (r.reason and (": " .. r.reason) or "") }
    end
  end
  local lines = { wcmd.table({ "weight", "shape", "setting", "form", "bytes", "SNR dB", "status" }, cells) }
  local t = report.totals
  local hidden = #report.weights - #cells
  if hidden > 0 then lines[#lines + 1] = string.format("(%d rank-1 weights left as they are)", hidden) end
  lines[#lines + 1] = string.format("%d of %d weights compressed; weights %s -> %s (%.2fx); SNR %s dB over the compressed weights; spec %d -> %d%s",
    t.compressed, t.weights, wcmd.fmt_bytes(t.bytes_before), wcmd.fmt_bytes(t.bytes_after), t.ratio or 1,
    fmt_snr(t.snr_db), report.spec_before, report.spec_after, dry and " (dry run: nothing written)" or ("; wrote " .. out_path))
  return table.concat(lines, "\n")
end

function C.report_json(report, o)
  local json = mlsh.json
  local rows = {}
  for k, r in ipairs(report.weights) do
    local x = {}
    for key, v in pairs(r) do
      if key ~= "sum_sq" and key ~= "mse" then
        if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then v = json.null end
        x[key] = v
      end
    end
    x.shape = json.array({ table.unpack(r.shape or {}) })
    if r.op_types then x.op_types = json.array({ table.unpack(r.op_types) }) end
    rows[k] = x
  end
  local t = {}
  for k, v in pairs(report.totals) do
    if k ~= "signal" and k ~= "noise" then t[k] = (type(v) == "number" and (v ~= v or v == math.huge)) and json.null or v end
  end
  return { path = o.model, output = o.dry_run and json.null or o.out, spec_before = report.spec_before,
           spec_after = report.spec_after, notes = json.array(report.notes), totals = t, weights = json.array(rows) }
end

local function run_command(args)
  local ok, o = pcall(C.parse, args)
  if not ok then return usage_fail(tostring(o) .. "\nusage: " .. C.usage) end
  if o.help then print("usage: " .. C.usage) return 0 end
  local policy = o.policy
  if o.config then
    local cok, file = pcall(require("mlsh.compress.config").load_file, o.config)
    if not cok then return usage_fail(tostring(file)) end
    -- the file's settings, with the command line's global setting on top
    for k, v in pairs(file) do
      if policy[k] == nil then policy[k] = v end
    end
  end
  -- the kernels' fresh buffers (about the weight file's size) faulted in on the idle core while
  -- the model loads and the plan is made (bigbuf.h); joined before the write
  local wbytes = require("mlsh.core").fs.size(o.model:gsub("/$", "") .. "/Data/com.apple.CoreML/weights/weight.bin")
  local pf = wbytes and wbytes >= PREFAULT_MIN and compress.prefault(math.min(wbytes, PREFAULT_MAX)) or nil
  local m, err = mlsh.try_load(o.model)
  if not m then io.stderr:write("mlsh: ", err, "\n") return 1 end
  local run = {}
  for k, v in pairs(policy) do run[k] = v end
  run.quiet, run.threads = o.quiet or o.json, o.threads
  -- a quiet run prints no report and checks nothing: the kernels need not sum the error metrics
  run.metrics = not (o.quiet and not o.json and not o.check)
  local cok, spec, read_blob, report = pcall(compress.model, m, run)
  if not cok then
    m:close()
    if type(spec) == "table" and spec.usage then return usage_fail(spec.msg) end
    local msg = tostring(spec)
    if msg:match("^compress: ") then return usage_fail(msg:gsub("^compress: ", "")) end
    io.stderr:write("mlsh: ", o.model, ": ", msg, "\n")
    return 1
  end
  if pf then pf:wait() end
  for _, n in ipairs(report.notes) do io.stderr:write("mlsh compress: ", n, "\n") end
  -- --check-outputs: the original runs before the write (--in-place replaces it), the result after
  local chk_ok, chk = true, nil
  if o.check then chk_ok, chk = pcall(check.reference, m, o.check) end
  if not chk_ok then
    m:close()
    io.stderr:write("mlsh compress: --check-outputs: ", tostring(chk), " (nothing written)\n")
    return 1
  end
  if not o.dry_run then
    local sok, serr = pcall(require("mlsh.model.writer").save, spec, read_blob, o.out, { source = m.path, in_place = o.in_place })
    if not sok then
      m:close()
      io.stderr:write("mlsh: ", tostring(serr), "\n")
      return 1
    end
  end
  if chk then chk_ok, chk = pcall(check.check_file, chk, o.out) end
  m:close()
  if not chk_ok then io.stderr:write("mlsh compress: --check-outputs: ", tostring(chk), " (", o.out, " was written)\n") return 1 end
  if o.json then
    local doc = C.report_json(report, o)
    doc.outputs_check = chk and check.json(chk) or nil
    print(mlsh.json.encode(doc, true))
  elseif not o.quiet then print(C.report_text(report, o.out, o.dry_run) .. (chk and ("\n" .. check.text(chk, report.totals.snr_db)) or "")) end
  return 0
end

-- The collector is held while the weights are compressed and written: every big result string
-- (megabytes) would otherwise pay for marking and sweeping the whole heap again, and those
-- strings stay alive until the write anyway (the Array path still collects after each big
-- weight, explicitly). Restarted afterwards, errors included, unless the caller had stopped it.
function C.run(args)
  local was_running = collectgarbage("isrunning")
  collectgarbage("stop")
  local ok, rc = pcall(run_command, args)
  if was_running then collectgarbage("restart") end
  if not ok then error(rc, 0) end
  return rc
end

return C
