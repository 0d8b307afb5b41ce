-- mlsh extract MODEL --from X[,Y] --to Z[,W] -o OUT — the sub-graph that computes the values Z
-- from the values X (plus whatever model inputs it still needs) as a model of its own. mlsh's
-- `extract` command hands every non-.pte model here with the arguments after `extract`.
local mlsh = require "mlsh"
local argparse = require "mlsh.cli.args"
local surgery = require "mlsh.surgery"
local extract = require "mlsh.surgery.extract"

local C = {
  summary = "write the sub-graph between two sets of values as a model of its own",
  usage = "mlsh extract MODEL [--from X[,Y...]] --to Z[,W...] -o OUT [--function F] [--json] [--in-place]",
}

local function usage(msg) return argparse.usage_error("extract", C, msg) end

local function names(list, s)
  for n in s:gmatch("[^,%s]+") do list[#list + 1] = n end
end

function C.parse(args)
  local o = { from = {}, to = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error({ usage = a .. " needs a value" }) end
      return args[i]
    end
    if a == "--from" then names(o.from, value())
    elseif a == "--to" then names(o.to, value())
    elseif a == "-o" or a == "--output" then
      if o.out then error({ usage = "one -o" }) end
      o.out = value()
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

local function run(o)
  local m, err = mlsh.try_load(o.model)
  if not m then io.stderr:write("mlsh extract: ", err, "\n") return 1 end
  local e = surgery.edit(m)
  if not e:is_program() then io.stderr:write("mlsh extract: ", o.model, ": only ML programs have values to extract between\n") return 1 end
  local fname = o["function"] or e:default_function()
  local okf, ferr = pcall(e.func, e, fname)
  if not okf then io.stderr:write("mlsh extract: ", o.model, ": ", tostring(ferr), "\n") return 1 end
  local f = e:func(fname)
  for _, n in ipairs(o.from) do
    if not f:type_of(n) then io.stderr:write("mlsh extract: ", o.model, ": function ", fname, " has no value '", n, "'\n") return 1 end
  end
  local part, info = extract.part(e, fname, o.from, o.to)
  if not part then io.stderr:write("mlsh extract: ", o.model, ": ", info, "\n") return 1 end
  part:save(o.out, { in_place = o.in_place })
  local pf = part:func(fname)
  local ins, outs = {}, {}
  for _, v in ipairs(pf:inputs()) do ins[#ins + 1] = v.name end
  for _, v in ipairs(pf:outputs()) do outs[#outs + 1] = v end
  if o.json then
    local json = mlsh.json
    print(json.encode({ model = o.model, output = o.out, ["function"] = fname, inputs = json.array(ins),
                        outputs = json.array(outs), ops = info.ops }))
  else
    print(string.format("wrote %s: %d ops; inputs %s; outputs %s", o.out, info.ops, table.concat(ins, ", "), table.concat(outs, ", ")))
  end
  return 0
end

function C.run(args)
  local o, rc = argparse.parsed("extract", C, args)
  if not o then return rc end
  if o.help then print("usage: " .. C.usage) return 0 end
  if not o.model then return usage("no model given") end
  if #o.to == 0 then return usage("no --to values given") end
  if not o.out then return usage("no output given (-o OUT)") end
  local rok, code = pcall(run, o)
  if not rok then io.stderr:write("mlsh extract: ", tostring(code), "\n") return 1 end
  return code
end

return C
