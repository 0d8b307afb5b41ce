-- mlsh fix MODEL -o OUT [transforms...] [--dry-run] [--json] — repair a model in place, one named pass
-- per transform, in the order given (docs/surgery.md). The input is never modified (--in-place
-- replaces it, atomically). Exit: 0 written / nothing to fix / dry run, 1 refused or unreadable, 2 usage.
local mlsh = require "mlsh"
local argparse = require "mlsh.cli.args"
local surgery = require "mlsh.surgery"
local transforms = require "mlsh.surgery.transforms"
local delta = require "mlsh.surgery.delta"

local C = {
  summary = "repair a model: --fp16, --fix-shape, --retarget, --mask-fill, --gelu tanh, --linear-to-conv",
  usage = "mlsh fix MODEL -o OUT [--fp16 [--keep-fp32 SEL]...] [--fix-shape NAME=DIMS]... [--retarget iOS15|iOS16|iOS17]\n"
    .. "                [--mask-fill -1e4] [--gelu tanh] [--linear-to-conv] [--function F] [--dry-run] [--json] [--in-place]\n"
    .. "                [--static]",
}

local function usage(msg) return argparse.usage_error("fix", C, msg) end

function C.parse(args)
  local o = { steps = {}, keep = {} }
  local i = 1
  local function value(flag)
    i = i + 1
    if args[i] == nil then error({ usage = flag .. " needs a value" }) end
    return args[i]
  end
  while i <= #args do
    local a = args[i]
    local t = transforms.BY_FLAG[a]
    if t then
      local v = true
      if t.arg then
        local ok, parsed = true, value(a)
        if t.parse then
          local p, err = t.parse(parsed)
          if p == nil then error({ usage = err }) end
          ok, parsed = true, p
        end
        v = ok and parsed
      end
      o.steps[#o.steps + 1] = { t = t, value = v, text = t.arg and (a .. " " .. args[i]) or a }
    elseif a == "-o" or a == "--output" then o.out = value(a)
    elseif a == "--keep-fp32" then o.keep[#o.keep + 1] = value(a)
    elseif a == "--function" then o["function"] = value(a)
    elseif a == "--dry-run" then o.dry_run = true
    elseif a == "--json" then o.json = true
    elseif a == "--in-place" then o.in_place = true
    elseif a == "--static" or a == "--no-calibrated" then o.calibrated = false -- the check delta's placement: first stage
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" and not tonumber(a) then error({ usage = "unknown option " .. a })
    elseif o.model then error({ usage = "one model at a time (got " .. o.model .. " and " .. a .. ")" })
    else o.model = a end
    i = i + 1
  end
  return o
end

local function temp_dir()
  local name = os.tmpname()
  os.remove(name)
  assert(mlsh.core.fs.mkdir_p(name))
  return name
end

local function print_changes(e, steps, results, o)
  for k, s in ipairs(steps) do
    local r = results[k]
    if r.changed == 0 then print(string.format("%s: nothing to fix (%s)", s.text, s.t.nothing)) end
  end
  for _, c in ipairs(e.changes) do
    print(string.format("  %-15s %s%s%s", c.pass, c["function"] and (c["function"] .. ": ") or "",
      c.op and (c.op .. " (" .. tostring(c.type) .. "): ") or "", c.what))
  end
  if o.dry_run then print("dry run: nothing written") end
end

local function report_json(o, e, steps, results, d, written)
  local json = mlsh.json
  local ts = json.array({})
  for k, s in ipairs(steps) do
    ts[k] = { name = s.t.name, arg = s.t.arg and s.text:match("^%S+ (.*)$") or json.null,
              status = results[k].changed > 0 and "applied" or "nothing", changes = results[k].changed }
  end
  local cs = json.array({})
  for i, c in ipairs(e.changes) do
    cs[i] = { transform = c.pass, ["function"] = c["function"] or json.null, op = c.op or json.null, type = c.type or json.null, what = c.what }
  end
  print(json.encode({ model = o.model, output = o.out or json.null, dry_run = o.dry_run == true, written = written,
    transforms = ts, changes = cs, check = d and delta.to_json(d) or json.null }))
end

local function run(o)
  local m, err = mlsh.try_load(o.model)
  if not m then io.stderr:write("mlsh fix: ", err, "\n") return 1 end
  local e = surgery.edit(m)
  local results, total = {}, 0
  for k, s in ipairs(o.steps) do
    local res, why = s.t.run(e, m, s.value, o)
    if not res then io.stderr:write("mlsh fix: ", o.model, ": ", why, "\n") return 1 end
    results[k] = res
    total = total + res.changed
  end
  if total == 0 then
    if o.json then report_json(o, e, o.steps, results, nil, false)
    else print_changes(e, o.steps, results, o) print("nothing to fix: " .. o.model .. " is left as it is") end
    return 0
  end
  local problems = e:validate()
  if #problems > 0 then
    io.stderr:write("mlsh fix: ", o.model, ": the result would not be a valid model: ", problems[1],
      #problems > 1 and string.format(" (and %d more)", #problems - 1) or "", "\n")
    return 1
  end
  local before = delta.snapshot(m, { calibrated = o.calibrated })
  local target, tmp = o.out, nil
  if o.dry_run then
    tmp = temp_dir()
    target = tmp .. "/result" .. (o.model:match("%.mlmodel$") and ".mlmodel" or ".mlpackage")
  end
  local ok, serr = pcall(e.save, e, target, { in_place = o.in_place })
  if not ok then
    if tmp then mlsh.core.fs.remove_tree(tmp) end
    io.stderr:write("mlsh fix: ", tostring(serr), "\n")
    return 1
  end
  local after_m = mlsh.load(target)
  local d = delta.compare(before, delta.snapshot(after_m, { calibrated = o.calibrated }))
  after_m:close()
  if tmp then mlsh.core.fs.remove_tree(tmp) end
  if o.json then report_json(o, e, o.steps, results, d, not o.dry_run)
  else
    print_changes(e, o.steps, results, o)
    for _, l in ipairs(delta.text(d)) do print(l) end
    if not o.dry_run then print("wrote " .. o.out) end
  end
  return 0
end

function C.run(args)
  local o, rc = argparse.parsed("fix", C, args)
  if not o then return rc end
  if o.help then print("usage: " .. C.usage) return 0 end
  if not o.model then return usage("no model given") end
  if #o.steps == 0 then return usage("no transform given") end
  if #o.keep > 0 then
    local has = false
    for _, s in ipairs(o.steps) do if s.t.name == "fp16" then has = true end end
    if not has then return usage("--keep-fp32 goes with --fp16") end
  end
  if o.in_place then
    if o.out and o.out ~= o.model then return usage("--in-place writes the input; do not also give -o") end
    o.out = o.model
  end
  if not o.out and not o.dry_run then return usage("no output given (-o OUT, or --in-place, or --dry-run)") end
  local rok, code = pcall(run, o)
  if not rok then io.stderr:write("mlsh fix: ", o.model, ": ", tostring(code), "\n") return 1 end
  return code
end

return C
