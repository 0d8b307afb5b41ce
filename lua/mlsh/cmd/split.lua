-- mlsh split MODEL --at OP -o A -o B | --chunks N -o OUT... [--pipeline -o P] — cut an ML program
-- into models that chain (coremltools' bisect_model): part k's outputs are named as the later parts'
-- inputs, weights travel with the part that uses them, other functions stay untouched.
local mlsh = require "mlsh"
local argparse = require "mlsh.cli.args"
local surgery = require "mlsh.surgery"
local extract = require "mlsh.surgery.extract"
local pipeline = require "mlsh.surgery.pipeline"

local C = {
  summary = "cut an ML program into chained models (--at OP | --chunks N), or one pipeline (--pipeline)",
  usage = "mlsh split MODEL (--at OP | --chunks N) -o OUT [-o OUT...] [--pipeline] [--function F] [--json] [--in-place]",
}

local function usage(msg) return argparse.usage_error("split", C, msg) end

function C.parse(args)
  local o = { outs = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error({ usage = a .. " needs a value" }) end
      return args[i]
    end
    if a == "--at" then o.at = value()
    elseif a == "--chunks" then
      local v = value()
      o.chunks = math.tointeger(tonumber(v))
      if not o.chunks or o.chunks < 2 then error({ usage = "--chunks needs an integer >= 2, got '" .. v .. "'" }) end
    elseif a == "-o" or a == "--output" then o.outs[#o.outs + 1] = value()
    elseif a == "--pipeline" then o.pipeline = true
    elseif a == "--function" then o["function"] = value()
    elseif a == "--json" then o.json = true
    elseif a == "--in-place" then o.in_place = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" then error({ usage = "unknown option " .. a })
    elseif o.model then error({ usage = "one model at a time" })
    else o.model = a end
    i = i + 1
  end
  return o
end

-- Output paths for n parts: n -o's, or one -o used as a prefix (X.mlpackage -> X_chunk1.mlpackage ...).
local function outputs_for(o, n)
  if #o.outs == n then return o.outs end
  if #o.outs == 1 and o.chunks then
    local base = o.outs[1]:gsub("/$", ""):gsub("%.mlpackage$", "")
    local list = {}
    for k = 1, n do list[k] = string.format("%s_chunk%d.mlpackage", base, k) end
    return list
  end
  return nil
end

local function weight_bytes(e, fname)
  local total = 0
  for _, b in ipairs(extract.weight_profile(e:func(fname))) do total = total + b end
  return total
end

local function report(o, parts, paths, fname)
  local json = mlsh.json
  local list = json.array({})
  for k, p in ipairs(parts) do
    list[k] = { path = paths[k] or json.null, inputs = json.array({}), outputs = json.array({}),
                ops = p.info.ops, weight_bytes = weight_bytes(p.editor, fname) }
    for _, v in ipairs(p.editor:func(fname):inputs()) do table.insert(list[k].inputs, v.name) end
    for _, v in ipairs(p.editor:func(fname):outputs()) do table.insert(list[k].outputs, v) end
  end
  if o.json then
    print(json.encode({ model = o.model, ["function"] = fname, pipeline = o.pipeline and o.outs[1] or json.null, parts = list }))
    return
  end
  for k, p in ipairs(list) do
    print(string.format("part %d%s: %d ops, %d weight bytes; inputs %s; outputs %s", k,
      p.path ~= json.null and (" " .. p.path) or "", p.ops, p.weight_bytes, table.concat(p.inputs, ", "), table.concat(p.outputs, ", ")))
  end
  if o.pipeline then print("wrote pipeline " .. o.outs[1]) end
end

local function run(o)
  local m, err = mlsh.try_load(o.model)
  if not m then io.stderr:write("mlsh split: ", err, "\n") return 1 end
  local e = surgery.edit(m)
  if not e:is_program() then io.stderr:write("mlsh split: ", o.model, ": only ML programs are split\n") return 1 end
  local fname = o["function"] or e:default_function()
  local okf, ferr = pcall(e.func, e, fname)
  if not okf then io.stderr:write("mlsh split: ", o.model, ": ", tostring(ferr), "\n") return 1 end
  local cuts, why = extract.cuts(e, fname, { at = o.at, chunks = o.chunks })
  if not cuts then io.stderr:write("mlsh split: ", o.model, ": ", why, "\n") return 1 end
  local parts, perr = extract.split(e, fname, cuts)
  if not parts then io.stderr:write("mlsh split: ", o.model, ": ", perr, "\n") return 1 end
  local paths = {}
  if o.pipeline then
    if #o.outs ~= 1 then return usage("--pipeline writes one package: give one -o") end
    pipeline.save(parts, e, fname, o.outs[1], { source = m.path, in_place = o.in_place })
  else
    paths = outputs_for(o, #parts)
    if not paths then return usage(string.format("%d parts need %d -o paths (or one -o prefix with --chunks)", #parts, #parts)) end
    for k, p in ipairs(parts) do p.editor:save(paths[k], { in_place = o.in_place }) end
  end
  report(o, parts, paths, fname)
  return 0
end

function C.run(args)
  local o, rc = argparse.parsed("split", C, args)
  if not o then return rc end
  if o.help then print("usage: " .. C.usage) return 0 end
  if not o.model then return usage("no model given") end
  if (o.at == nil) == (o.chunks == nil) then return usage("give one of --at OP or --chunks N") end
  if #o.outs == 0 then return usage("no output given (-o)") end
  local rok, code = pcall(run, o)
  if not rok then io.stderr:write("mlsh split: ", tostring(code), "\n") return 1 end
  return code
end

return C
