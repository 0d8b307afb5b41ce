-- Compression conformance against the shared corpus (coremltools 9.1-compressed models):
--  1. every compress_* model: each constexpr parameter reads as its .facts.json records it
--     (elements, sum, sum of squares, min, max, first values); `mlsh weights --json` decompresses
--     every weight to values whose statistics agree with what the facts imply (shape and dtype of
--     the op output; LUT range; sum and sum of squares of sparse values; mask popcount = nonzeros);
--     and the values equal mlsh's own compression of the base model with the same settings.
--  2. the base models compressed by `mlsh compress` (the corpus settings) reload and decompress to
--     exactly the SNR mlsh reported; their weight.bin is compared with coremltools' byte for byte.
-- Prints agreement lines. Exit status 0 unless mlsh crashed or hung (disagreements are reported).
local json = require "mlsh.json"
local mlsh = require "mlsh"
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local C = require "common"

local corpus = arg[1] or "../shared/corpus"
local verbose = os.getenv("VERBOSE") == "1"
C.require_corpus(corpus, "compress conformance")
local dir = corpus .. "/coreml"
local bin, q, sh = C.bin, C.q, C.sh
local compress = require "mlsh.compress"

-- The settings each corpus model was made with (MANIFEST.tsv), as mlsh flags and policies.
local MADE = {
  compress_palettize_kmeans4_per_tensor_ios16 = { base = "compress_base_ios16", args = "--palettize 4", policy = { palettize = { nbits = 4 } } },
  compress_palettize_kmeans6_ios16 = { base = "compress_base_ios16", args = "--palettize 6", policy = { palettize = { nbits = 6 } } },
  compress_quant_int8_per_channel_sym_ios16 = { base = "compress_base_ios16", args = "--quantize int8", policy = { quantize = { dtype = "int8" } } },
  compress_prune_magnitude50_ios16 = { base = "compress_base_ios16", args = "--prune 0.5", policy = { prune = { sparsity = 0.5 } } },
  compress_palettize_kmeans4_grouped16_ios18 = { base = "compress_base_ios18",
    args = "--palettize 4 --granularity per-grouped-channel --group-size 16",
    policy = { palettize = { nbits = 4, granularity = "per_grouped_channel", group_size = 16 } },
    note = "coremltools clusters groups under 10,000 elements with scikit-learn's k-means (kmeans1d only above); mlsh's k-means is exact" },
  compress_quant_int4_per_block32_ios18 = { base = "compress_base_ios18", args = "--quantize int4 --per-block 32",
    policy = { quantize = { dtype = "int4", granularity = "per_block", block_size = 32 } } },
  compress_joint_prune50_palettize4_ios18 = { base = "compress_base_ios18", args = "--prune 0.5 --palettize 4",
    policy = { prune = { sparsity = 0.5 }, palettize = { nbits = 4 } } },
}

local crashed = 0
local function close(a, b, tol)
  if a == nil or b == nil then return a == b end
  if a == b then return true end
  return math.abs(a - b) <= (tol or 1e-9) * math.max(1, math.abs(a), math.abs(b))
end

local Check = {}
Check.__index = Check
local function new_check() return setmetatable({ n = 0, diffs = {} }, Check) end
function Check:ok(cond, fmt, ...)
  self.n = self.n + 1
  if not cond then self.diffs[#self.diffs + 1] = string.format(fmt, ...) end
end

local DT = { FLOAT16 = "fp16", FLOAT32 = "fp32", UINT8 = "uint8", INT8 = "int8", UINT1 = "uint1", UINT2 = "uint2",
             UINT3 = "uint3", UINT4 = "uint4", UINT6 = "uint6", INT4 = "int4", UINT32 = "uint32", INT32 = "int32" }

local function weights_json(path)
  local out, code = sh(string.format("timeout %d %s weights --json %s 2>/dev/null", C.TIMEOUT, q(bin), q(path)))
  if code == 124 or (code and code > 128) then return nil, "crash" end
  local ok, j = pcall(json.decode, out)
  if not ok or type(j) ~= "table" then return nil, "bad json (exit " .. tostring(code) .. ")" end
  return j
end

local function list_models()
  local out = {}
  for name in sh("ls -1 " .. q(dir) .. " 2>/dev/null"):gmatch("[^\n]+") do
    if name:match("^compress_.*%.facts%.json$") and not name:match("^compress_base") then
      out[#out + 1] = name:gsub("%.facts%.json$", "")
    end
  end
  table.sort(out)
  return out
end

-- ---- part 1: the corpus compressed models ------------------------------------------------------------
local function check_model(file)
  local c = new_check()
  local facts = C.readjson(dir .. "/" .. file .. ".facts.json")
  local block = facts and facts.mlProgram and facts.mlProgram.functions.main.main_block
  if not block then return c, "no facts" end
  local m, err = mlsh.try_load(dir .. "/" .. file)
  if not m then c:ok(false, "load: %s", tostring(err)) return c end
  -- stored parameters as the facts record them
  local stored = {}
  for _, w in ipairs(m:weights()) do if w.op and w.param then stored[w.op .. "." .. w.param] = w end end
  local ops_by_out = {}
  for _, op in ipairs(m:ops()) do ops_by_out[op.outputs[1].name] = op end
  local params = 0
  for _, f in ipairs(block.constexpr_ops) do
    local op = ops_by_out[f.output]
    c:ok(op ~= nil and op.type == f.type, "%s: op %s", f.output, op and op.type or "missing")
    for _, kind in ipairs({ "inputs", "attributes" }) do
      for pname, p in pairs(f[kind] or {}) do
        if p.storage == "blob" then
          local w = op and stored[op.name .. "." .. pname]
          params = params + 1
          if not w then c:ok(false, "%s.%s: not listed by m:weights()", f.output, pname)
          else
            local st = w:values():stats()
            local fs = p.stats
            c:ok(w.count == p.n_elements, "%s.%s: %d elements, facts %d", f.output, pname, w.count, p.n_elements)
            c:ok(close(st.sum, fs.sum, 1e-6) and close(st.sum_sq, fs.sum_sq, 1e-6) and st.min == fs.min and st.max == fs.max,
              "%s.%s: stats sum %.9g/%.9g sum_sq %.9g/%.9g min %g/%g max %g/%g", f.output, pname, st.sum, fs.sum,
              st.sum_sq, fs.sum_sq, st.min, fs.min, st.max, fs.max)
            local v = w:values()
            for k, x in ipairs(fs.first or {}) do c:ok(v[k] == x, "%s.%s[%d] = %g, facts %g", f.output, pname, k, v[k], x) end
            c:ok(DT[p.type.dtype] == w.dtype, "%s.%s: dtype %s, facts %s", f.output, pname, w.dtype, p.type.dtype)
          end
        end
      end
    end
  end
  -- the decompressed weights, through the CLI
  local j, why = weights_json(dir .. "/" .. file)
  if not j then
    if why == "crash" then crashed = crashed + 1 end
    c:ok(false, "mlsh weights --json: %s", why)
    m:close()
    return c, params
  end
  local rows = {}
  for _, r in ipairs(j.weights) do rows[r.name] = r end
  local finals = 0
  local consumed = {}
  for _, f in ipairs(block.constexpr_ops) do
    for _, p in pairs(f.inputs or {}) do if p.ref then consumed[p.ref] = true end end
  end
  for _, f in ipairs(block.constexpr_ops) do
    if not consumed[f.output] then
      finals = finals + 1
      local r = rows[f.output]
      c:ok(r ~= nil, "%s: not in mlsh weights", f.output)
      if r then
        local n = 1
        for _, d in ipairs(f.output_type.shape) do n = n * d end
        c:ok(r.count == n and DT[f.output_type.dtype] == r.dtype, "%s: %s x%d, facts %s x%d", f.output, tostring(r.dtype),
          r.count or -1, f.output_type.dtype, n)
        local comp = r.compression or {}
        local a = f.attributes or {}
        local i = f.inputs or {}
        if f.type == "constexpr_lut_to_dense" then
          local lut = a.lut or i.lut
          c:ok(comp.kind == "palettized", "%s: compression %s", f.output, tostring(comp.kind))
          c:ok(r.min >= lut.stats.min and r.max <= lut.stats.max, "%s: values [%g, %g] outside the LUT [%g, %g]", f.output,
            r.min, r.max, lut.stats.min, lut.stats.max)
        elseif f.type == "constexpr_sparse_to_dense" and a.nonzero_data then
          local nz = a.nonzero_data.stats
          c:ok(comp.kind == "sparse", "%s: compression %s", f.output, tostring(comp.kind))
          c:ok(close(r.mean * n, nz.sum, 1e-6), "%s: sum %.9g, facts nonzero_data sum %.9g", f.output, r.mean * n, nz.sum)
          c:ok(close((r.std ^ 2 + r.mean ^ 2) * n, nz.sum_sq, 1e-5), "%s: sum of squares %.9g, facts %.9g", f.output,
            (r.std ^ 2 + r.mean ^ 2) * n, nz.sum_sq)
          c:ok(close(r.sparsity, 1 - a.nonzero_data.n_elements / n, 1e-9) or r.sparsity > 1 - a.nonzero_data.n_elements / n,
            "%s: sparsity %g, facts %d nonzeros of %d", f.output, r.sparsity, a.nonzero_data.n_elements, n)
        elseif f.type == "constexpr_sparse_to_dense" then
          -- iOS18 joint: the mask's popcount is the number of kept values
          local first
          for _, g in ipairs(block.constexpr_ops) do
            if g.output == (i.mask and i.mask.ref) then first = g end
          end
          local mask = first and (first.inputs.indices_mask or first.inputs.data_mask)
          c:ok(comp.kind == "joint", "%s: compression %s", f.output, tostring(comp.kind))
          if mask then
            c:ok(r.sparsity <= 1 - mask.stats.sum / n + 1e-12, "%s: sparsity %g, facts mask keeps %d of %d", f.output, r.sparsity,
              mask.stats.sum, n)
            c:ok(close(comp.sparsity, 1 - mask.stats.sum / n), "%s: described sparsity %g, facts %g", f.output, comp.sparsity,
              1 - mask.stats.sum / n)
          end
          local lut = first and first.inputs.lut
          if lut then c:ok(r.min >= math.min(0, lut.stats.min) and r.max <= math.max(0, lut.stats.max), "%s: outside the LUT", f.output) end
        elseif f.type == "constexpr_affine_dequantize" or f.type == "constexpr_blockwise_shift_scale" then
          local sc = (a.scale or i.scale).stats
          local qd = (a.quantized_data or i.data).stats
          c:ok(comp.kind == "quantized", "%s: compression %s", f.output, tostring(comp.kind))
          local bound = math.max(math.abs(sc.min), math.abs(sc.max)) * math.max(math.abs(qd.min), math.abs(qd.max)) * 2
          c:ok(math.abs(r.min) <= bound and math.abs(r.max) <= bound, "%s: values beyond scale x code range", f.output)
        end
      end
    end
  end
  -- against mlsh's own compression of the base model
  local made = MADE[file:gsub("%.mlpackage.*$", "")]
  local same_note
  if made then
    local b = mlsh.load(dir .. "/" .. made.base .. ".mlpackage")
    local ok, spec, _, report = pcall(compress.model, b, made.policy)
    if ok then
      local mine = {}
      for _, row in ipairs(report.weights) do if row.output then mine[row.output] = row end end
      local inv = {}
      for _, e in ipairs(m:inventory()) do inv[e.name] = e end
      local worst, differ, n, signed_zero = 0, 0, 0, 0
      local base_inv = {}
      for _, e in ipairs(b:inventory()) do base_inv[e.name] = e end
      local ct_snr, mlsh_snr = {}, {}
      for out, row in pairs(mine) do
        local e = inv[out]
        c:ok(e ~= nil, "%s: coremltools did not compress what mlsh compresses", out)
        if e then
          local theirs = e:values()
          -- mlsh's values: the reconstructions the report measured (recomputed from the base)
          local r = compress.tensor(base_inv[row.name]:values(), made.policy, { weight_dtype = "fp16",
            axis = compress.select.output_axis(base_inv[row.name]), input_axis = compress.select.input_axis(base_inv[row.name]) })
          local d = 0
          for k = 1, #theirs do d = math.max(d, math.abs(theirs[k] - r.reconstructed[k])) end
          worst = math.max(worst, d)
          if d > 0 then differ = differ + 1
          elseif theirs:encode("fp32") ~= r.reconstructed:encode("fp32") then signed_zero = signed_zero + 1 end
          n = n + 1
          ct_snr[#ct_snr + 1] = compress.metrics(base_inv[row.name]:values(), theirs).snr_db
          mlsh_snr[#mlsh_snr + 1] = row.snr_db
        end
      end
      for name, e in pairs(inv) do
        if e.compression then c:ok(mine[name] ~= nil, "%s: compressed by coremltools, not by mlsh", name) end
      end
      local function mean(t) local s = 0 for _, x in ipairs(t) do s = s + x end return #t > 0 and s / #t or 0 end
      if differ == 0 and signed_zero == 0 then
        same_note = string.format("= mlsh %s of the base, bit for bit (%d weights)", made.args, n)
      elseif differ == 0 then
        same_note = string.format("= mlsh %s of the base in value (%d weights; %d differ only in the sign of zeros)", made.args, n, signed_zero)
      elseif made.note then
        same_note = string.format("mlsh %s differs on %d/%d weights (max %.3g): %s; mean SNR coremltools %.2f dB, mlsh %.2f dB",
          made.args, differ, n, worst, made.note, mean(ct_snr), mean(mlsh_snr))
      else
        -- equal up to the sign of zero LUT entries counts as equal values
        c:ok(worst == 0, "%s: %d/%d weights differ from mlsh's compression (max |diff| %g)", file, differ, n, worst)
      end
    else
      c:ok(false, "mlsh compress of %s: %s", made.base, type(spec) == "table" and spec.msg or tostring(spec))
    end
    b:close()
  end
  m:close()
  return c, params, finals, same_note
end

local models = list_models()
local agree = 0
for _, file in ipairs(models) do
  local ok, c, params, finals, note = pcall(check_model, file)
  if not ok then
    crashed = crashed + 1
    print(string.format("  ERROR %s: %s", file, tostring(c)))
  elseif #c.diffs == 0 then
    agree = agree + 1
    print(string.format("  ok    %s: %d parameters read as the facts record them, %d weights decompress consistently (%d checks)%s",
      file, params or 0, finals or 0, c.n, note and ("; " .. note) or ""))
  else
    print(string.format("  DIFF  %s (%d of %d checks)", file, #c.diffs, c.n))
    for i, d in ipairs(c.diffs) do
      if i > 8 and not verbose then print(string.format("        ... %d more", #c.diffs - 8)) break end
      print("        " .. d)
    end
    if note then print("        " .. note) end
  end
end
print(string.format("compress conformance: %d/%d coremltools-compressed models read and decompress as their facts say", agree, #models))

-- ---- part 2: mlsh-compressed base models reload to the SNR mlsh reported ------------------------------
local tmp = sh("mktemp -d /tmp/mlsh-compress-conf.XXXXXX"):gsub("%s+$", "")
local names = {}
for k in pairs(MADE) do names[#names + 1] = k end
table.sort(names)
local rt_ok, identical = 0, 0
for _, ref in ipairs(names) do
  local made = MADE[ref]
  local src = dir .. "/" .. made.base .. ".mlpackage"
  local out = tmp .. "/" .. ref .. ".mlpackage"
  local s, code = sh(string.format("timeout %d %s compress %s -o %s %s --json 2>&1", C.TIMEOUT, q(bin), q(src), q(out), made.args))
  local line
  if code == 124 or (code and code > 128) then
    crashed = crashed + 1
    line = string.format("  CRASH mlsh compress %s (%s): exit %s", made.base, made.args, tostring(code))
  else
    local okj, rep = pcall(json.decode, s)
    if not okj or code ~= 0 then
      line = string.format("  DIFF  mlsh compress %s (%s): exit %s %s", made.base, made.args, tostring(code), s:sub(1, 200))
    else
      local okc, res = pcall(function()
        local o, m2 = mlsh.load(src), mlsh.load(out)
        local orig, n, bad = {}, 0, {}
        for _, e in ipairs(o:inventory()) do orig[e.name] = e end
        local inv = {}
        for _, e in ipairs(m2:inventory()) do inv[e.name] = e end
        for _, row in ipairs(rep.weights) do
          if row.status == "compressed" then
            local e = inv[row.output]
            local snr = e and compress.metrics(orig[row.name]:values(), e:values()).snr_db
            n = n + 1
            if snr ~= row.snr_db then bad[#bad + 1] = string.format("%s %s vs reported %s", row.name, tostring(snr), tostring(row.snr_db)) end
          end
        end
        o:close()
        m2:close()
        return { n = n, bad = bad }
      end)
      local a = io.open(out .. "/Data/com.apple.CoreML/weights/weight.bin", "rb")
      local b = io.open(dir .. "/" .. ref .. ".mlpackage/Data/com.apple.CoreML/weights/weight.bin", "rb")
      local wa, wb = a and a:read("a"), b and b:read("a")
      if a then a:close() end
      if b then b:close() end
      local cmp
      if wa and wb and wa == wb then
        identical = identical + 1
        cmp = string.format("weight.bin identical to coremltools' (%d bytes)", #wa)
      elseif wa and wb then
        local nd, zsign = 0, 0
        for k = 1, math.min(#wa, #wb) do
          local x, y = wa:byte(k), wb:byte(k)
          if x ~= y then
            nd = nd + 1
            -- the high byte of an fp16 zero: 0x80 is -0.0, 0x00 is +0.0
            if (x == 0x80 and y == 0) or (x == 0 and y == 0x80) then zsign = zsign + 1 end
          end
        end
        local why = made.note and (": " .. made.note:match("^[^;]*")) or ""
        if nd > 0 and zsign == nd then why = " (only signs of zero LUT entries: mlsh -0.0, coremltools +0.0)" end
        cmp = string.format("weight.bin %d bytes (coremltools %d), %d bytes differ%s", #wa, #wb, nd, why)
      else
        cmp = "weight.bin missing"
      end
      if not okc then
        line = string.format("  DIFF  mlsh %s on %s: %s", made.args, made.base, tostring(res))
      elseif #res.bad > 0 then
        line = string.format("  DIFF  mlsh %s on %s: %s", made.args, made.base, table.concat(res.bad, "; "))
      else
        rt_ok = rt_ok + 1
        line = string.format("  ok    mlsh %s on %s: %d weights reload and decompress to the reported SNR exactly; %s",
          made.args, made.base, res.n, cmp)
      end
    end
  end
  print(line)
end
sh("rm -rf " .. q(tmp))
print(string.format("compress round trip: %d/%d settings reload to exactly the SNR mlsh reported; weight.bin identical to coremltools' for %d/%d",
  rt_ok, #names, identical, #names))
if crashed > 0 then
  print(string.format("compress conformance: mlsh crashed or hung %d time(s)", crashed))
  os.exit(1)
end
