-- mlsh — the Lua API users script against (the `mlsh` global of the REPL, -e code and scripts).
--   local mlsh = require "mlsh"
--   local m = mlsh.load("Model.mlpackage")      -- raises "path: reason" on bad input
--   local m, err = mlsh.try_load(path)          -- nil, "path: reason" instead
--   m.spec_version, m.model_type, m:inputs(), m:functions(), m:ops(), m:layers(), m:weights() ...
-- Everything else is loaded when first used, so `mlsh --version` loads this file and no module:
--   mlsh.json mlsh.types mlsh.model mlsh.writer mlsh.required_spec mlsh.placement mlsh.rules
--   mlsh.builder mlsh.compress mlsh.constexpr mlsh.facts mlsh.sandbox mlsh.playbook mlsh.checklist
--   mlsh.run mlsh.compare (the interpreter: m:run, output comparison)
local M = { version = "0.1.0" }

-- mlsh.<field> -> the module behind it, required on first access (the C core too).
local FIELDS = {
  core = "mlsh.core", json = "mlsh.json", types = "mlsh.types", model = "mlsh.model.coreml", writer = "mlsh.model.writer",
  required_spec = "mlsh.required_spec", placement = "mlsh.placement.coreml", rules = "mlsh.engine.rules",
  builder = "mlsh.builder", compress = "mlsh.compress", constexpr = "mlsh.model.constexpr",
  facts = "mlsh.facts", sandbox = "mlsh.sandbox", playbook = "mlsh.engine.playbook",
  checklist = "mlsh.engine.checklist", run = "mlsh.run",
  compare = { "mlsh.run", "compare" }, -- a function of a module: { module, key }
}
M.FIELDS = FIELDS

-- Module names from before the Lua layer had folders; `require` of an old name still answers
-- (scripts, rule, playbook and checklist files written against them keep working).
M.LEGACY_MODULES = {
  ["mlsh.cli"] = "mlsh.cli.main", ["mlsh.repl"] = "mlsh.cli.repl", ["mlsh.dotcmd"] = "mlsh.cli.dotcmd",
  ["mlsh.help"] = "mlsh.cli.help", ["mlsh.weights"] = "mlsh.model.weights",
  ["mlsh.constexpr"] = "mlsh.model.constexpr", ["mlsh.writer"] = "mlsh.model.writer",
  ["mlsh.compiled"] = "mlsh.model.compiled", ["mlsh.rules"] = "mlsh.engine.rules",
  ["mlsh.playbook"] = "mlsh.engine.playbook", ["mlsh.checklist"] = "mlsh.engine.checklist",
  ["mlsh.contract"] = "mlsh.engine.contract", ["mlsh.placement"] = "mlsh.placement.coreml",
  ["mlsh.report_text"] = "mlsh.report.text",
}
for old, new in pairs(M.LEGACY_MODULES) do
  if package.preload[old] == nil then package.preload[old] = function() return require(new) end end
end

local LOADER, SANDBOX = "mlsh.model", "mlsh.sandbox" -- by name: this file requires no module
local models -- mlsh.model (the loader), loaded with the first model

-- One path for both load flavours: nil, msg on failure. opts ({delegate = N}): from a container
-- of Core ML models (a .pte, ORT's cache folder), the one Model selected (mlsh.model.open).
function M.try_load(path, opts)
  models = models or require(LOADER)
  return models.open(path, opts)
end

function M.load(path, opts)
  local m, err = M.try_load(path, opts)
  if not m then error(err, 0) end
  return m
end

-- mlsh.safe([on]): from now on rule and fallback code (and recipes run with --safe) is sandboxed:
-- no io, os.execute, package.loadlib, load or debug, read-only models, instruction and memory budgets.
function M.safe(on)
  local sandbox = require(SANDBOX)
  sandbox.set_safe(on ~= false)
  return sandbox.safe
end

return setmetatable(M, { __index = function(t, k)
  local name = FIELDS[k]
  if not name then return nil end
  local mod = type(name) == "table" and require(name[1])[name[2]] or require(name)
  rawset(t, k, mod)
  return mod
end })
