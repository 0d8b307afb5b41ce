-- mlsh.cli.help — the REPL's help() and help(topic): every API function, rule, playbook (and its
-- leaves), checklist, playbook pattern, subcommand and dot command is a topic.
--
--   help.show(topic)   prints (the REPL's help global calls this)
--   help.text(topic [, index])   the text, or nil, "no help for ..." with a suggestion
--   help.topics()      every topic name (sorted), for completion and suggestions
local M = {}

-- The Lua API: name -> {signature, what}. Method names accept "m:x", "m.x" or "x".
M.API = {
  ["open"] = { "open(path) -> Model", "load a .mlmodel, .mlpackage (folder or zip) or .mlmodelc; raises \"path: reason\" (same as mlsh.load)" },
  ["info"] = { "info(m)", "print the model's summary" },
  ["help"] = { "help([topic])", "this help; topic: a function, rule id, playbook/symptom, checklist, pattern (2b), command or .command" },
  ["diagnose"] = { "diagnose(m [, symptom [, opts]])", "walk a symptom's playbook: asks the symptom when not given, then only the questions the model cannot answer; prints the path, findings and fix. opts: target=\"iOS17\", original=PATH|Model, compute_units, answers={id=answer}. m may be a path, or nil (every question asked)" },
  ["checklist"] = { "checklist(name, m [, opts])", "run a checklist (diagnostic, conversion, production): items the model answers are checked, the rest asked (y/n/Enter to skip). opts: target, answers" },
  ["json"] = { "json.encode(v [, indent]) / json.decode(s)", "mlsh's JSON (json.null, json.array(t), json.object(t))" },
  ["mlsh.load"] = { "mlsh.load(path) -> Model", "load a model; raises \"path: reason\"" },
  ["mlsh.try_load"] = { "mlsh.try_load(path) -> Model | nil, msg", "load without raising" },
  ["mlsh.cli.main"] = { "mlsh.cli(command, args...) -> status", "run a subcommand from the REPL, e.g. mlsh.cli(\"check\", \"M.mlpackage\")" },
  ["m:inputs"] = { "m:inputs([fn]) -> {feature}", "input features {name, kind, dtype, shape, flexibility, ...}; fn names a function of a multi-function model" },
  ["m:outputs"] = { "m:outputs([fn]) -> {feature}", "output features" },
  ["m:states"] = { "m:states([fn]) -> {feature}", "state features (iOS18 stateful models)" },
  ["m:functions"] = { "m:functions() -> {function}", "ML program functions, default first: {name, opset, inputs, outputs, ops, all_ops}" },
  ["m:find_function"] = { "m:find_function(name) -> function", "one function by name" },
  ["m:ops"] = { "m:ops([fn]) -> {Op}", "every op (nested blocks included); op.type, op.name, op.outputs, op:inputs(), op:arg(p), op:attr(k)" },
  ["m:op_histogram"] = { "m:op_histogram([fn]) -> {type = count}", "op counts by type" },
  ["m:layers"] = { "m:layers() -> {layer}", "NeuralNetwork layers {index, name, type, inputs, outputs, params}" },
  ["m:layer_histogram"] = { "m:layer_histogram() -> {type = count}", "layer counts by type" },
  ["m:submodels"] = { "m:submodels() -> {Model}, names", "pipeline sub-models (same API)" },
  ["m:weights"] = { "m:weights() -> {Weight}", "every weight: w.name, w.dtype, w.shape, w.count, w.bytes, w.storage, w:values() (an Array), w:blob()" },
  ["m:info"] = { "m:info() -> table", "the mlsh info --json object" },
  ["m:summary"] = { "m:summary() -> string", "the text summary the REPL prints for a model" },
  ["m:placement"] = { "m:placement([opts]) -> placement", "predicted device per op (ANE/GPU/CPU), segments, transitions, ane_coverage, cut_makers. opts: compute_units, target, fallbacks" },
  ["m:required_spec"] = { "m:required_spec() -> explanation", "the minimum spec version the content needs, with a reason per bump" },
  ["m:close"] = { "m:close()", "release the model's files (automatic with local m <close>)" },
  ["m.format"] = { "m.format", "\"mlmodel\", \"mlpackage\", \"mlpackage.zip\" or \"mlmodelc\"" },
  ["m.path"] = { "m.path", "the path it was loaded from" },
  ["m.spec_version"] = { "m.spec_version", "the specificationVersion (7 = iOS16, 8 = iOS17, 9 = iOS18)" },
  ["m.model_type"] = { "m.model_type", "\"mlProgram\", \"neuralNetwork\", \"pipeline\", ..." },
  ["m.metadata"] = { "m.metadata", "{author, license, short_description, version, user_defined}" },
  ["m.spec"] = { "m.spec", "the raw protobuf Model message (msg.field, msg:has(f), msg:encode() ...)" },
  ["op:inputs"] = { "op:inputs() -> {{param, name | value, dtype, shape}}", "an op's inputs in order" },
  ["op:arg"] = { "op:arg(param) -> value", "an input's value, following a const" },
  ["op:attr"] = { "op:attr(name) -> value", "a decoded immediate attribute" },
  ["w:values"] = { "w:values() -> Array", "the weight as float32 (sub-byte, fp16, int8 and quantized NN weights decoded)" },
  ["w:blob"] = { "w:blob() -> record", "the weight.bin metadata record {dtype, size, data_offset}" },
  ["a:stats"] = { "a:stats() -> {count, min, max, mean, std, sum, sparsity, nan}", "statistics of an Array" },
  ["a:shape"] = { "a:shape() / a:reshape{...} / a:totable([max]) / a:slice(i, j) / a:encode(dtype)", "Array helpers" },
  ["mlsh.core.compress.metrics"] = { "mlsh.core.compress.metrics(original, reconstructed) -> {snr_db, psnr_db, mse, max_abs_err, cosine, sparsity}", "how close a reconstruction is (e.g. a decompressed weight vs the original)" },
  ["mlsh.engine.playbook"] = { "require \"mlsh.playbook\"", "the diagnose engine: discover(), context(m, opts), walk/diagnose(pb, ctx, {answers}), result_json(r); docs/playbooks.md" },
  ["mlsh.engine.checklist"] = { "require \"mlsh.checklist\"", "checklists: discover(), run(list, ctx, {answers}), result_json(r)" },
  ["mlsh.graph"] = { "require \"mlsh.graph\"", "graph.dot(m, opts) -> DOT text; graph.write(m, \"out.svg\", opts)" },
  ["mlsh.engine.rules"] = { "require \"mlsh.rules\"", "the rules engine: discover(), run(m, set, opts); docs/rules.md" },
}

local METHOD_PREFIXES = { "m:", "m.", "op:", "w:", "a:" }

local function lines(t) return table.concat(t, "\n") .. "\n" end

local function api_text(name)
  local e = M.API[name]
  return lines({ e[1], "  " .. e[2] })
end

-- The leading "--" comment of a Lua file (the rule / playbook's own explanation).
local function header_comment(path)
  local f = path and io.open(path, "r")
  if not f then return nil end
  local out = {}
  for line in f:lines() do
    local c = line:match("^%-%-%s?(.*)$")
    if not c then break end
    out[#out + 1] = "  " .. c
  end
  f:close()
  return #out > 0 and table.concat(out, "\n") or nil
end

local function rule_text(r)
  local out = {
    string.format("rule %s: %s", r.id, r.title),
    string.format("  severity %s, pattern %s, categories %s", r.severity, r.pattern or "-", table.concat(r.categories, ", ")),
  }
  if r.fix then out[#out + 1] = "  fix: " .. r.fix end
  local h = header_comment(r.source)
  if h then out[#out + 1] = h end
  out[#out + 1] = "  run: mlsh check MODEL --select " .. r.id
  return lines(out)
end

-- The decision tree as an indented outline; shared nodes are printed once.
local function outline(pb, id, depth, seen, out)
  local n = pb.by_id[id]
  local pad = string.rep("  ", depth)
  if seen[id] then
    out[#out + 1] = pad .. "(see " .. id .. " above)"
    return
  end
  seen[id] = true
  if n.kind == "leaf" then
    out[#out + 1] = string.format("%s=> [%s] %s: %s", pad, n.pattern or "-", n.id, n.title)
    return
  end
  out[#out + 1] = string.format("%s%s  %s  [%s]", pad, n.id, n.ask, n.check and "checked" or "asked")
  for _, a in ipairs(n.answers) do
    out[#out + 1] = string.format("%s  - %s: %s", pad, a.id, a.text)
    outline(pb, a.next, depth + 2, seen, out)
  end
end

local function playbook_text(pb)
  local out = { string.format("playbook %s: %s", pb.id, pb.title), "  symptom: " .. pb.symptom,
    "  patterns: " .. (#pb.patterns > 0 and table.concat(pb.patterns, ", ") or "-"),
    string.format("  run: diagnose(m, %q)  |  mlsh diagnose MODEL --symptom %s", pb.id, pb.id) }
  if pb.pressure then
    out[#out + 1] = "  wrong approach: " .. pb.pressure.wrong
    out[#out + 1] = "  right approach: " .. pb.pressure.right
    for _, c in ipairs(pb.pressure.checks) do out[#out + 1] = "    $ " .. c end
  end
  out[#out + 1] = "  tree ([checked]: the model answers it when it can; [asked]: only you can):"
  outline(pb, pb.start, 2, {}, out)
  return lines(out)
end

local function leaf_text(pb, leaf)
  local out = { string.format("%s/%s [%s]: %s", pb.id, leaf.id, leaf.pattern or "-", leaf.title), "  cause: " .. leaf.cause,
    "  steps:" }
  for i, s in ipairs(leaf.steps) do out[#out + 1] = string.format("    %d. %s", i, s) end
  out[#out + 1] = "  fix: " .. leaf.fix
  for _, lang in ipairs({ "python", "swift" }) do
    if leaf.snippet[lang] then
      out[#out + 1] = "  " .. lang .. ":"
      for l in (leaf.snippet[lang] .. "\n"):gmatch("(.-)\n") do out[#out + 1] = "      " .. l end
    end
  end
  out[#out + 1] = "  trade-off: " .. leaf.tradeoff
  return lines(out)
end

local function checklist_text(c)
  local out = { string.format("checklist %s: %s", c.id, c.title),
    string.format("  run: checklist(%q, m)  |  mlsh checklist %s MODEL", c.id, c.id) }
  for _, it in ipairs(c.items) do
    out[#out + 1] = string.format("  %-24s %s  [%s]", it.id, it.text, it.check and (it.ask and "checked, else asked" or "checked") or "asked")
  end
  return lines(out)
end

local function command_text(name)
  local ok, cmd = pcall(require, "mlsh.cmd." .. name)
  if not ok or type(cmd) ~= "table" then return nil end
  return lines({ string.format("command %s: %s", name, cmd.summary or ""), "  usage: " .. (cmd.usage or ("mlsh " .. name)),
    string.format("  from the REPL: mlsh.cli(%q, ...)", name) })
end

local COMMAND_NAMES = { "info", "check", "diagnose", "checklist", "graph", "save", "ep" }

-- Every topic: name -> function returning the text. Built on demand (rules and playbooks are files).
function M.index()
  local idx = {}
  local kinds = { api = {}, rules = {}, playbooks = {}, checklists = {}, patterns = {}, commands = {}, dot = {} }
  for name in pairs(M.API) do
    idx[name] = function() return api_text(name) end
    kinds.api[#kinds.api + 1] = name
  end
  local rules = require "mlsh.engine.rules"
  local set = rules.discover({})
  for _, r in ipairs(set and set.rules or {}) do
    idx[r.id] = idx[r.id] or function() return rule_text(r) end
    kinds.rules[#kinds.rules + 1] = r.id
  end
  local pbset = require("mlsh.engine.playbook").discover({})
  for _, pb in ipairs(pbset and pbset.list or {}) do
    idx[pb.id] = function() return playbook_text(pb) end
    kinds.playbooks[#kinds.playbooks + 1] = pb.id
    for _, n in ipairs(pb.nodes) do
      if n.kind == "leaf" then idx[pb.id .. "/" .. n.id] = function() return leaf_text(pb, n) end end
    end
  end
  local clset = require("mlsh.engine.checklist").discover({})
  for _, c in ipairs(clset and clset.list or {}) do
    idx[c.id] = idx[c.id] or function() return checklist_text(c) end
    kinds.checklists[#kinds.checklists + 1] = c.id
  end
  for _, p in ipairs(rules.PATTERNS) do
    kinds.patterns[#kinds.patterns + 1] = p
    idx[p] = function()
      local out = { string.format("pattern %s: %s", p, rules.PATTERN_TITLES[p] or "") }
      for _, r in ipairs(set and set.rules or {}) do
        if r.pattern == p then out[#out + 1] = string.format("  rule %-22s %s", r.id, r.title) end
      end
      for _, pb in ipairs(pbset and pbset.list or {}) do
        for _, n in ipairs(pb.nodes) do
          if n.kind == "leaf" and n.pattern == p then
            out[#out + 1] = string.format("  leaf %-40s %s", pb.id .. "/" .. n.id, n.title)
          end
        end
      end
      return lines(out)
    end
  end
  for _, c in ipairs(COMMAND_NAMES) do
    idx[c] = idx[c] or function() return command_text(c) end
    kinds.commands[#kinds.commands + 1] = c
  end
  local dot = require "mlsh.cli.dotcmd"
  for name, c in pairs(dot.COMMANDS) do
    idx["." .. name] = function() return lines({ c.usage, "  " .. c.text }) end
    kinds.dot[#kinds.dot + 1] = "." .. name
  end
  for k, list in pairs(kinds) do table.sort(list) end
  local function list_of(title, names, describe)
    return function()
      local out = { title }
      for _, n in ipairs(names) do out[#out + 1] = "  " .. (describe and describe(n) or n) end
      return lines(out)
    end
  end
  idx.api = list_of("API (help(\"name\") for each):", kinds.api, function(n) return string.format("%-28s %s", n, M.API[n][2]:sub(1, 60)) end)
  idx.rules = list_of("rules (help(\"id\") for each):", kinds.rules)
  idx.playbooks = list_of("playbooks / symptoms (help(\"id\") for the tree):", kinds.playbooks)
  idx.symptoms = idx.playbooks
  idx.checklists = list_of("checklists:", kinds.checklists)
  idx.patterns = list_of("playbook patterns:", kinds.patterns, function(p) return p .. "  " .. (rules.PATTERN_TITLES[p] or "") end)
  idx.commands = list_of("subcommands (mlsh COMMAND ...):", kinds.commands)
  idx[".commands"] = idx[".help"]
  idx.dot = list_of("dot commands:", kinds.dot)
  return idx
end

function M.topics()
  local out = {}
  for k in pairs(M.index()) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- A function value -> its API name (for help(open), help(m.inputs) ...).
local function name_of_function(f)
  local mlsh = require "mlsh"
  if f == mlsh.load then return "open" end
  if f == mlsh.try_load then return "mlsh.try_load" end
  for k, v in pairs(require("mlsh.model.coreml").methods) do
    if v == f then return "m:" .. k end
  end
  if f == require("mlsh.engine.playbook").interactive then return "diagnose" end
  if f == require("mlsh.engine.checklist").interactive then return "checklist" end
  return nil
end

local OVERVIEW = [[
mlsh — a Core ML analysis shell. The REPL is Lua with these additions:
  m = open("Model.mlpackage")      load a model (.mlmodel, .mlpackage folder or zip, .mlmodelc)
  m                                its summary; m:inputs() m:ops() m:weights() m:placement() m:required_spec()
  diagnose(m)                      symptom -> cause -> fix, asking only what the file cannot tell
  checklist("production", m)       each item pass / fail / unknown, with the evidence
  .help                            dot commands: .open .check .diagnose .checklist .graph .rules ...
help(topic), e.g. help("m:weights"), help("fp32-compute"), help("slow-inference"), help("production"), help("2b")
help("api"), help("rules"), help("playbooks"), help("checklists"), help("patterns"), help("commands") list each kind.
Tab completes globals, fields and methods (m:<Tab>) and file paths inside strings.
]]

-- idx: a prebuilt M.index() (callers looking up many topics build it once)
function M.text(topic, idx)
  if topic == nil then return OVERVIEW end
  if type(topic) == "function" then
    local n = name_of_function(topic)
    if not n then return nil, "no help for this function; help() lists the topics" end
    topic = n
  end
  if type(topic) ~= "string" then return nil, "help(topic): topic is a name (string) or an API function" end
  idx = idx or M.index()
  local key = topic:match("^%s*(.-)%s*$")
  if idx[key] then return idx[key]() end
  for _, pre in ipairs(METHOD_PREFIXES) do
    if idx[pre .. key] then return idx[pre .. key]() end
  end
  local stripped = key:match("^[%a_]+[:%.](.+)$")
  if stripped then
    for _, pre in ipairs(METHOD_PREFIXES) do
      if idx[pre .. stripped] then return idx[pre .. stripped]() end
    end
  end
  -- a leaf id without its playbook, when unique
  local found
  for name in pairs(idx) do
    if name:match("/" .. key:gsub("%p", "%%%0") .. "$") then
      if found then found = false break end
      found = name
    end
  end
  if found then return idx[found]() end
  local names = {}
  for name in pairs(idx) do names[#names + 1] = name end
  table.sort(names)
  return nil, string.format("no help for '%s'%s; help() lists the topics", key, require("mlsh.engine.playbook").suggest(key, names))
end

function M.show(topic)
  local text, err = M.text(topic)
  if text then io.write(text) else print(err) end
end

return M
