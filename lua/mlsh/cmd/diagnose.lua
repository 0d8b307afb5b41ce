-- mlsh diagnose MODEL --symptom ID — walk a symptom's playbook from symptom to cause to fix,
-- answering every question the model file can answer and reporting the rest as open questions
-- (no prompts: answer them with --answers FILE / --answer ID=ANSWER). Exit status as mlsh check:
-- 0 no error finding, 1 an error finding (or an unreadable model diagnosed), 2 bad input.
local mlsh = require "mlsh"
local json = mlsh.json
local playbook = require "mlsh.engine.playbook"
local rules = require "mlsh.engine.rules"
local argparse = require "mlsh.cli.args"

local C = {
  summary = "walk a symptom's playbook to the cause and fix (--list for symptoms)",
  usage = "mlsh diagnose [MODEL] --symptom ID [--answers FILE] [--answer ID=ANSWER]... [--target iOS17]\n"
    .. "                     [--original PATH] [--compute-units UNITS] [--memory-budget SIZE] [--delegate N]\n"
    .. "                     [--device CHIP|DEVICE] [--static]\n"
    .. "                     [--format text|json|markdown|sarif] [--rules DIR]... [--no-builtin] [--playbooks DIR]...\n"
    .. "       mlsh diagnose --list [--format json]",
}

C.FORMATS = argparse.FORMATS
-- the shared option helpers, also under diagnose's names (as before)
C.parse_options, C.resolve_common, C.collect_answers = argparse.parse_options, argparse.resolve_common, argparse.collect_answers

-- Render a result document in `format` with the renderers of mlsh.report.*; returns the text.
function C.render(kind, format, result, opts)
  opts = opts or {}
  if format == "json" then return json.encode(opts.json_doc, true) .. "\n" end
  if format == "sarif" then return json.encode(require("mlsh.report.sarif")[kind](result), true) .. "\n" end
  if format == "markdown" then return require("mlsh.report.markdown")[kind](result) end
  local term = require "mlsh.term"
  return require("mlsh.report.text")[kind](result, { paint = term.for_stream(1) })
end

local VALUES = {
  ["--symptom"] = "symptom", ["--answers"] = "answers_file", ["--answer"] = "answer", ["--target"] = "target",
  ["--original"] = "original", ["--compute-units"] = "compute_units", ["--memory-budget"] = "memory_budget",
  ["--format"] = "format", ["--rules"] = "rules", ["--playbooks"] = "playbooks", ["--device"] = "device",
  ["--delegate"] = "delegate",
}
local MULTI = { "answer", "rules", "playbooks" }
local FLAGS = { ["--list"] = { "list", true }, ["--no-builtin"] = { "no_builtin", true }, ["--json"] = { "format", "json" },
                ["-h"] = { "help", true }, ["--help"] = { "help", true },
                ["--static"] = { "calibrated", false }, ["--no-calibrated"] = { "calibrated", false },
                ["--calibrated"] = { "calibrated", true } } -- placement: --static = the first stage only

local function fail(msg)
  io.stderr:write("mlsh diagnose: ", msg, "\n")
  return 2
end

local function list(set, format)
  if format == "json" then
    local items = json.array({})
    for i, p in ipairs(set.list) do
      items[i] = { id = p.id, title = p.title, symptom = p.symptom, patterns = json.array(p.patterns),
                   pressure = p.pressure ~= nil, source = p.source }
    end
    print(json.encode({ symptoms = items }, true))
  else
    for _, p in ipairs(set.list) do
      print(string.format("%-30s %-18s %s", p.id, #p.patterns > 0 and table.concat(p.patterns, ",") or "-", p.symptom))
    end
  end
  return #set.errors > 0 and 1 or 0
end

function C.run(args)
  local o, err = C.parse_options(args, { values = VALUES, multi = MULTI, flags = FLAGS })
  if not o then return fail(err .. "\nusage: " .. C.usage) end
  if o.help then print("usage: " .. C.usage) return 0 end
  o.format = o.format or "text"
  local set, derr = playbook.discover({ dirs = o.playbooks })
  if not set then return fail(derr) end
  for _, e in ipairs(set.errors) do io.stderr:write("mlsh diagnose: ", e.message, "\n") end
  if o.list then
    if #o.paths > 0 then return fail("--list takes no model") end
    return list(set, o.format)
  end
  if not o.symptom then return fail("no --symptom given (mlsh diagnose --list shows them)\nusage: " .. C.usage) end
  local pb = set.by_id[o.symptom]
  if not pb then
    local ids = {}
    for _, p in ipairs(set.list) do ids[#ids + 1] = p.id end
    return fail(string.format("unknown symptom '%s'%s (one of: %s)", o.symptom, playbook.suggest(o.symptom, ids),
      table.concat(ids, ", ")))
  end
  if #o.paths > 1 then return fail("one model at a time\nusage: " .. C.usage) end
  local answers, aerr = C.collect_answers(o, playbook.load_answers)
  if not answers then return fail(aerr) end
  local aok, verr = playbook.check_answers(pb, answers, o.answers_file or "--answer")
  if not aok then return fail(verr) end
  local rok, cerr = C.resolve_common(o)
  if not rok then return fail(cerr) end
  local rule_set, rerr = rules.discover({ dirs = o.rules, builtin = not o.no_builtin })
  if not rule_set then return fail(rerr) end
  for _, e in ipairs(rule_set.errors) do io.stderr:write("mlsh diagnose: ", e.message, "\n") end
  -- the playbook's rule selection is checked against the rules before any model is read
  local pick_ok, pick_err = rules.selector(pb.rules, rule_set)
  if not pick_ok then return fail(string.format("%s: playbook '%s': field 'rules': %s", pb.source, pb.id, pick_err)) end
  local path = o.paths[1]
  local m, load_error
  if path then
    m, load_error = mlsh.try_load(path, { delegate = o.delegate })
    -- an unreadable file is the diagnosis when the playbook's first question is about it
    if not m and not pb.by_id[pb.start].model_optional then
      io.stderr:write("mlsh: ", load_error, "\n")
      return 2
    end
  end
  local original
  if o.original then
    local oerr
    original, oerr = mlsh.try_load(o.original)
    if not original then
      io.stderr:write("mlsh: ", oerr, "\n")
      if m then m:close() end
      return 2
    end
  end
  local ok, res = pcall(function()
    local ctx = playbook.context(m, { path = path, load_error = load_error, target = o.target,
      target_name = o.target_name, compute_units = o.compute_units, original = original, original_path = o.original,
      memory_budget = o.memory_budget, device = o.device, rule_set = rule_set,
      calibrated = o.calibrated })
    local r = playbook.diagnose(pb, ctx, { answers = answers })
    local doc = playbook.result_json(r)
    return { r = r, text = C.render("diagnose", o.format, r, { json_doc = doc }) }
  end)
  if m then m:close() end
  if original then original:close() end
  if not ok then
    local e = tostring(res)
    return fail(path and not e:find(path, 1, true) and (path .. ": " .. e) or e)
  end
  io.write(res.text)
  if res.r.summary.error > 0 or load_error then return 1 end
  return 0
end

return C
