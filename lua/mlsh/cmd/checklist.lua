-- mlsh checklist NAME MODEL — run a checklist (diagnostic, conversion, production): every item
-- the model file answers is checked (pass/fail with evidence), the rest reported unknown (answer
-- them with --answers FILE / --answer ID=yes|no). Exit status: 0 nothing failed, 1 an item failed,
-- 2 bad input.
local mlsh = require "mlsh"
local json = mlsh.json
local checklist = require "mlsh.engine.checklist"
local playbook = require "mlsh.engine.playbook"
local rules = require "mlsh.engine.rules"
local argparse = require "mlsh.cli.args"
local diagnose = require "mlsh.cmd.diagnose"

local C = {
  summary = "run a checklist (diagnostic, conversion, production) against a model",
  usage = "mlsh checklist NAME MODEL [--target iOS17] [--answers FILE] [--answer ID=yes|no]... [--compute-units UNITS]\n"
    .. "                      [--memory-budget SIZE] [--format text|json|markdown|sarif] [--rules DIR]... [--checklists DIR]...\n"
    .. "                      [--device CHIP|DEVICE] [--static]\n"
    .. "       mlsh checklist --list [--format json]",
}

local VALUES = {
  ["--answers"] = "answers_file", ["--answer"] = "answer", ["--target"] = "target", ["--compute-units"] = "compute_units",
  ["--memory-budget"] = "memory_budget", ["--format"] = "format", ["--rules"] = "rules", ["--checklists"] = "checklists",
  ["--device"] = "device",
}
local MULTI = { "answer", "rules", "checklists" }
local FLAGS = { ["--list"] = { "list", true }, ["--no-builtin"] = { "no_builtin", true }, ["--json"] = { "format", "json" },
                ["-h"] = { "help", true }, ["--help"] = { "help", true },
                ["--static"] = { "calibrated", false }, ["--no-calibrated"] = { "calibrated", false },
                ["--calibrated"] = { "calibrated", true } } -- placement: --static = the first stage only

local function fail(msg)
  io.stderr:write("mlsh checklist: ", msg, "\n")
  return 2
end

-- Answers files for checklists hold {["item-id"] = "yes" | "no" | "pass" | "fail" | true | false}.
local function load_answers(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then return nil, (tostring(err):gsub("^cannot open ", "")) end
  local ok, res = pcall(chunk)
  if not ok then
    res = tostring(res)
    return nil, res:find(path, 1, true) and res or (path .. ": " .. res)
  end
  if type(res) ~= "table" then
    return nil, string.format("%s: an answers file returns a table {[\"item-id\"] = \"yes\"|\"no\"}, got %s", path, type(res))
  end
  for k in pairs(res) do
    if type(k) ~= "string" then return nil, string.format("%s: keys must be item ids (strings), got %s", path, type(k)) end
  end
  return res
end
C.load_answers = load_answers

function C.run(args)
  local o, err = argparse.parse_options(args, { values = VALUES, multi = MULTI, flags = FLAGS })
  if not o then return fail(err .. "\nusage: " .. C.usage) end
  if o.help then print("usage: " .. C.usage) return 0 end
  o.format = o.format or "text"
  local set, derr = checklist.discover({ dirs = o.checklists })
  if not set then return fail(derr) end
  for _, e in ipairs(set.errors) do io.stderr:write("mlsh checklist: ", e.message, "\n") end
  if o.list then
    if o.format == "json" then
      local items = json.array({})
      for i, c in ipairs(set.list) do items[i] = { id = c.id, title = c.title, items = #c.items, source = c.source } end
      print(json.encode({ checklists = items }, true))
    else
      for _, c in ipairs(set.list) do print(string.format("%-14s %2d items  %s", c.id, #c.items, c.title)) end
    end
    return #set.errors > 0 and 1 or 0
  end
  local name, path = o.paths[1], o.paths[2]
  if not name then return fail("no checklist given (mlsh checklist --list shows them)\nusage: " .. C.usage) end
  local list = set.by_id[name]
  if not list then
    local ids = {}
    for _, c in ipairs(set.list) do ids[#ids + 1] = c.id end
    return fail(string.format("unknown checklist '%s'%s (one of: %s)", name, playbook.suggest(name, ids),
      table.concat(ids, ", ")))
  end
  if not path then return fail("no model given\nusage: " .. C.usage) end
  if #o.paths > 2 then return fail("one model at a time\nusage: " .. C.usage) end
  local answers, aerr = argparse.collect_answers(o, load_answers)
  if not answers then return fail(aerr) end
  local aok, verr = checklist.check_answers(list, answers, o.answers_file or "--answer")
  if not aok then return fail(verr) end
  local rok, cerr = argparse.resolve_common(o)
  if not rok then return fail(cerr) end
  local rule_set, rerr = rules.discover({ dirs = o.rules, builtin = not o.no_builtin })
  if not rule_set then return fail(rerr) end
  local m, lerr = mlsh.try_load(path)
  if not m then
    io.stderr:write("mlsh: ", lerr, "\n")
    return 2
  end
  local ok, res = pcall(function()
    local ctx = playbook.context(m, { path = path, target = o.target, target_name = o.target_name,
      compute_units = o.compute_units, memory_budget = o.memory_budget, device = o.device, rule_set = rule_set,
      calibrated = o.calibrated })
    local r = checklist.run(list, ctx, { answers = answers })
    return { r = r, text = diagnose.render("checklist", o.format, r, { json_doc = checklist.result_json(r) }) }
  end)
  m:close()
  if not ok then
    local e = tostring(res)
    return fail(e:find(path, 1, true) and e or (path .. ": " .. e))
  end
  io.write(res.text)
  return res.r.summary.fail > 0 and 1 or 0
end

return C
