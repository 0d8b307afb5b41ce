-- mlsh.engine.context — the ctx playbook and checklist checks receive: the model's facts (mlsh.facts)
-- plus the rule engine's findings over it (run once). ctx:rule_set() ctx:all_findings()
-- ctx:findings(filter) ctx:finding(rule_id), and every facts method.
local facts = require "mlsh.facts"
local rules = require "mlsh.engine.rules"

local M = {}

local Context = setmetatable({}, { __index = facts.Facts })
Context.__index = Context
M.Context = Context

-- See mlsh.facts.new for opts (rule_set: the rules to run; default: the discovered ones).
function M.new(m, opts) return facts.new(m, opts, Context) end

function Context:rule_set()
  if not self.rule_set_value then
    local set = self.given_rules
    if not set then
      local err
      set, err = rules.discover({})
      if not set then error(err, 0) end
    end
    self.rule_set_value = set
  end
  return self.rule_set_value
end

-- Placement honours the fallbacks the rule folders declare.
function Context:fallbacks() return self:rule_set().fallbacks end

-- Every rule's findings over the model (run once); filter: rule id, pattern, category or predicate.
function Context:all_findings()
  if not self.model then return {} end
  return self:cached("findings", function()
    local set = self:rule_set()
    local f = rules.run(self.model, set, { target = self.target, compute_units = self.compute_units,
      options = self.options, device = self.device, facts = self })
    return f
  end)
end

function Context:findings(filter)
  local out = {}
  for _, f in ipairs(self:all_findings()) do
    local keep = filter == nil or (type(filter) == "function" and filter(f))
    if type(filter) == "string" then
      keep = f.rule == filter or f.pattern == filter
      for _, c in ipairs(f.categories or {}) do
        if c == filter then keep = true end
      end
    end
    if keep then out[#out + 1] = f end
  end
  return out
end

function Context:finding(rule_id) return self:findings(function(f) return f.rule == rule_id end)[1] end

return M
