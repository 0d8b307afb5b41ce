-- mlsh compare ORIGINAL COMPRESSED [--min-snr DB] [--json] — how far each weight of a compressed
-- model is from the original: SNR (dB), PSNR, cosine, max |error|, worst first, with the playbook
-- (more bits, grouped channels, per-block scales, lower sparsity) for every weight under the floor.
-- Weights are matched by name (coremltools' <w>_palettized/_quantized/_sparsified too), then by
-- the op and input that consume them. Exit 0 ok, 1 a model unreadable or a weight under the
-- floor, 2 bad usage.
local mlsh = require "mlsh"
local json = mlsh.json
local compress = require "mlsh.compress"
local wcmd = require "mlsh.cmd.weights"

local C = { summary = "per-weight SNR of a compressed model against its original, worst first",
            usage = "mlsh compare ORIGINAL COMPRESSED [--min-snr DB (default 30)] [--json] [--all]"
              .. " | mlsh compare A B --outputs [...] (output SNR on the interpreter)" }

local function jnum(v)
  if v == nil or v ~= v or v == math.huge or v == -math.huge then return json.null end
  return v
end

local function fmt(v, f)
  if v == nil then return "-" end
  if v == math.huge then return "inf" end
  return string.format(f or "%.2f", v)
end

function C.run(args)
  for _, a in ipairs(args) do if a == "--outputs" then return require("mlsh.compare_outputs").run(args) end end
  local paths, min_snr, as_json, all = {}, compress.DEFAULT_MIN_SNR, false, false
  local i = 1
  while args[i] do
    local a = args[i]
    if a == "--min-snr" then
      min_snr = tonumber(args[i + 1] or "")
      if not min_snr then io.stderr:write("mlsh compare: --min-snr needs a number (dB)\n") return 2 end
      i = i + 1
    elseif a == "--json" then as_json = true
    elseif a == "--all" then all = true
    elseif a == "-h" or a == "--help" then print("usage: " .. C.usage) return 0
    elseif a:sub(1, 1) == "-" then io.stderr:write("mlsh compare: unknown option ", a, "\nusage: ", C.usage, "\n") return 2
    else paths[#paths + 1] = a end
    i = i + 1
  end
  if #paths ~= 2 then io.stderr:write("usage: ", C.usage, "\n") return 2 end
  local models = {}
  for k, p in ipairs(paths) do
    local m, err = mlsh.try_load(p)
    if not m then
      io.stderr:write("mlsh: ", err, "\n")
      for _, x in ipairs(models) do x:close() end
      return 1
    end
    models[k] = m
  end
  local ok, rows, extra = pcall(compress.compare, models[1], models[2], { min_snr = min_snr })
  for _, x in ipairs(models) do x:close() end
  if not ok then io.stderr:write("mlsh: ", tostring(rows), "\n") return 1 end
  local below = 0
  for _, r in ipairs(rows) do if r.below then below = below + 1 end end
  if as_json then
    local out = {}
    for k, r in ipairs(rows) do
      out[k] = { name = r.name, original = r.original, ["function"] = r["function"] or json.null, kind = r.kind,
                 compression = r.summary, snr_db = jnum(r.snr_db), psnr_db = jnum(r.psnr_db), cosine = jnum(r.cosine),
                 max_abs_err = jnum(r.max_abs_err), count = r.count, bytes_before = r.bytes_before or json.null,
                 bytes_after = r.bytes_after or json.null, below = r.below,
                 advice = json.array(r.advice or {}) }
    end
    local un = {}
    for k, u in ipairs(extra.unmatched) do un[k] = u end
    print(json.encode({ original = paths[1], compressed = paths[2], min_snr = min_snr, below = below,
                        weights = json.array(out), unmatched = json.array(un) }, true))
  else
    local cells, same = {}, 0
    for _, r in ipairs(rows) do
      if r.snr_db == math.huge and not all then same = same + 1
      else
        cells[#cells + 1] = { (r.below and "! " or "  ") .. r.name, r.summary, fmt(r.snr_db), fmt(r.psnr_db),
          fmt(r.cosine, "%.5f"), fmt(r.max_abs_err, "%.3g"),
          wcmd.fmt_bytes(r.bytes_before) .. " -> " .. wcmd.fmt_bytes(r.bytes_after) }
      end
    end
    print(wcmd.table({ "  weight", "compression", "SNR dB", "PSNR dB", "cosine", "max|err|", "bytes" }, cells))
    if same > 0 then print(string.format("(%d weights identical to the original)", same)) end
    for _, u in ipairs(extra.unmatched) do print(string.format("  ? %s: %s", u.name, u.why)) end
    if below > 0 then
      print(string.format("%d weight%s under %.4g dB; what to try, most effective first:", below, below == 1 and "" or "s", min_snr))
      for _, r in ipairs(rows) do
        if r.below then
          print(string.format("  %s (%s dB): %s", r.name, fmt(r.snr_db),
            #r.advice > 0 and table.concat(r.advice, "; ")
              or (r.kind == "none" and "stored dense but not equal to the original (decompressed from a lossy form?)")
              or "leave it uncompressed (op_name = {[name] = false} in a config)"))
        end
      end
    else
      print(string.format("every weight at or above %.4g dB", min_snr))
    end
  end
  return below > 0 and 1 or 0
end

return C
