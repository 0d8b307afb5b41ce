-- mlsh.engine.select — the --select expression language over rules (rules.selector(expr, set)).
-- expr := term ("or" term)* ;  term := factor ("and" factor)* ;  factor := "not" factor | "(" expr ")" | NAME
-- NAME: a rule id (globs with *), a category, a severity (error/warning/info) or a pattern (1a..5b).
-- "," is a synonym for "or". Unknown names are errors (a typo must not silently select nothing).

local suggest = require("mlsh.engine.contract").suggest

local M = {}
-- the vocabulary (categories, severities, patterns) of mlsh.engine.rules, which hands it over
local RULES = { CATEGORIES = {}, SEVERITIES = {}, PATTERNS = {} }
function M.vocabulary(t) RULES = t end

local function tokenize(s)
  local toks, i = {}, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c:match("%s") then i = i + 1
    elseif c == "(" or c == ")" or c == "," then toks[#toks + 1] = { t = c, pos = i }; i = i + 1
    else
      local w = s:match("^[%w_%-%.%*]+", i)
      if not w then return nil, string.format("unexpected '%s' at position %d", c, i) end
      local lw = w:lower()
      if lw == "and" or lw == "or" or lw == "not" then toks[#toks + 1] = { t = lw, pos = i }
      else toks[#toks + 1] = { t = "name", v = w, pos = i } end
      i = i + #w
    end
  end
  return toks
end

local function glob_match(glob, s)
  local pat = "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return s:match(pat) ~= nil
end

-- Build a predicate over rules from an expression; `set` gives the vocabulary of known names.
-- Every name a selection may use: categories, severities, patterns, rule ids; and the ids.
local function known_names(set)
  local known = {}
  for _, c in ipairs(RULES.CATEGORIES) do known[c] = true end
  for _, s in ipairs(RULES.SEVERITIES) do known[s] = true end
  for _, p in ipairs(RULES.PATTERNS) do known[p] = true end
  local ids = {}
  for _, r in ipairs(set and set.rules or {}) do
    known[r.id] = true
    ids[#ids + 1] = r.id
    for _, c in ipairs(r.categories) do known[c] = true end
  end
  return known, ids
end

-- The predicate a NAME stands for (a glob over rule ids, or an id, category, severity or
-- pattern), or nil, why.
local function name_predicate(name, known, ids)
  if name:find("*", 1, true) then
    local any = false
    for _, id in ipairs(ids) do
      if glob_match(name, id) then any = true end
    end
    if not any then return nil, "'" .. name .. "' matches no rule id" end
    return function(r) return glob_match(name, r.id) end
  end
  if not known[name] then
    local cands = {}
    for k in pairs(known) do cands[#cands + 1] = k end
    table.sort(cands)
    return nil, "unknown rule id or category '" .. name .. "'" .. suggest(name, cands)
  end
  return function(r)
    if r.id == name or r.severity == name or r.pattern == name then return true end
    for _, c in ipairs(r.categories) do
      if c == name then return true end
    end
    return false
  end
end

function M.selector(expr, set)
  if expr == nil or expr:match("^%s*$") then return function() return true end end
  local toks, err = tokenize(expr)
  if not toks then return nil, "--select: " .. err end
  local known, ids = known_names(set)
  local pos = 1
  local function peek() return toks[pos] end
  local function fail(msg)
    local t = toks[pos]
    error({ msg = string.format("--select \"%s\": %s%s", expr, msg, t and (" at position " .. t.pos) or " at the end") }, 0)
  end
  local parse_expr
  local function parse_factor()
    local t = peek()
    if not t then fail("expected a name, 'not' or '('") end
    if t.t == "not" then
      pos = pos + 1
      local f = parse_factor()
      return function(r) return not f(r) end
    elseif t.t == "(" then
      pos = pos + 1
      local e = parse_expr()
      if not peek() or peek().t ~= ")" then fail("expected ')'") end
      pos = pos + 1
      return e
    elseif t.t == "name" then
      local pred, why = name_predicate(t.v, known, ids)
      if not pred then fail(why) end
      pos = pos + 1
      return pred
    end
    fail("unexpected '" .. t.t .. "'")
  end
  local function parse_term()
    local f = parse_factor()
    while peek() and peek().t == "and" do
      pos = pos + 1
      local a, b = f, parse_factor()
      f = function(r) return a(r) and b(r) end
    end
    return f
  end
  parse_expr = function()
    local f = parse_term()
    while peek() and (peek().t == "or" or peek().t == ",") do
      pos = pos + 1
      local a, b = f, parse_term()
      f = function(r) return a(r) or b(r) end
    end
    return f
  end
  local ok, res = pcall(function()
    local f = parse_expr()
    if peek() then fail("unexpected '" .. (peek().v or peek().t) .. "'") end
    return f
  end)
  if not ok then
    if type(res) == "table" and res.msg then return nil, res.msg end
    return nil, "--select: " .. tostring(res)
  end
  return res
end

return M
