-- ANE readiness report: where each op runs (predicted), the segments, the Neural Engine coverage
-- and the fixes that would help most. Team fallbacks in --rules folders / MLSH_RULES are honoured.
--   mlsh recipes/ane-readiness.lua MODEL [--compute-units all] [--target iOS17] [--rules DIR]...
--                                        [--device "A17 Pro"] [--max-ops N] [--static]
-- Exit status: 0, or 2 on bad input.
local mlsh = require "mlsh"
local rules = require "mlsh.engine.rules"
local placement = require "mlsh.placement.coreml"
local check = require "mlsh.cmd.check"

local USAGE = "usage: mlsh recipes/ane-readiness.lua MODEL [--compute-units all|cpu_and_ne|cpu_and_gpu|cpu_only] "
  .. "[--target iOS17] [--rules DIR]... [--device NAME] [--max-ops N] [--static]"

local function die(msg)
  io.stderr:write("ane-readiness: ", msg, "\n", USAGE, "\n")
  return 2
end

local function pct(x) return string.format("%.0f%%", x * 100) end
local function clip(s, n) s = tostring(s or "") return #s > n and (s:sub(1, n - 1) .. "~") or s end

-- The top fixes: the placement's cut-makers first, then the ANE rules' findings.
local function print_fixes(p, findings, cu)
  print("top fixes:")
  local n, seen = 0, {}
  for _, c in ipairs(p.cut_makers) do
    if n >= 5 then break end
    if not seen[c.fix] then
      seen[c.fix] = true
      n = n + 1
      print(string.format("  %d. %s\n     (%s x%d: %d switch(es), %s of work)", n, c.fix, c.type, c.count, c.transitions,
        pct(c.work_share)))
    end
  end
  for _, f in ipairs(findings) do
    if n >= 8 then break end
    if f.fix and not seen[f.fix] and f.rule ~= "ane-coverage" then
      seen[f.fix] = true
      n = n + 1
      print(string.format("  %d. %s\n     (%s: %s)", n, f.fix, f.rule, f.message))
    end
  end
  if n == 0 then print("  none: every op is predicted on the Neural Engine" .. (cu:find("NE") or cu == "ALL" and "" or " (not in the compute units)")) end
end

local function main(args)
  local o = { rules = {}, max_ops = 200 }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--compute-units" or a == "--target" or a == "--rules" or a == "--device" or a == "--max-ops" then
      local v = args[i + 1]
      if not v then return die(a .. " needs a value") end
      if a == "--rules" then o.rules[#o.rules + 1] = v
      elseif a == "--max-ops" then o.max_ops = tonumber(v) or o.max_ops
      else o[a:sub(3):gsub("%-", "_")] = v end
      i = i + 2
    elseif a == "--static" then o.calibrated = false i = i + 1 -- placement's first stage only
    elseif a == "-h" or a == "--help" then print(USAGE) return 0
    elseif a:sub(1, 1) == "-" then return die("unknown option " .. a)
    else o.path = o.path and die("one model at a time") or a; i = i + 1 end
  end
  if type(o.path) ~= "string" then return die("no model given") end
  local cu, err = placement.compute_units(o.compute_units)
  if not cu then return die(err) end
  local target
  if o.target then
    local n, name = check.parse_target(o.target)
    if not n then return die(name) end
    target = n
  end
  local set, derr = rules.discover({ dirs = o.rules })
  if not set then return die(derr) end
  for _, e in ipairs(set.errors) do io.stderr:write("ane-readiness: ", e.message, "\n") end
  local m, lerr = mlsh.try_load(o.path)
  if not m then io.stderr:write("mlsh: ", lerr, "\n") return 2 end

  local p = placement.simulate(m, { compute_units = cu, target = target, fallbacks = set.fallbacks, device = o.device,
                                   calibrated = o.calibrated })
  local select = rules.selector("ane", set)
  local findings = rules.run(m, set, { target = target, compute_units = cu, select = select, placement = p })

  print(string.format("ANE readiness: %s (%s, spec %s), compute units %s%s", m.path, m.model_type or "?",
    tostring(m.spec_version), cu, #set.fallbacks > 0 and string.format(", %d team fallback(s)", #set.fallbacks) or ""))
  print()
  print(string.format("%-4s %-6s %-24s %-28s %s", "#", "device", "type", "op", "reason"))
  for k, op in ipairs(p.ops) do
    if k > o.max_ops then print(string.format("... %d more ops (--max-ops)", #p.ops - o.max_ops)) break end
    print(string.format("%-4d %-6s %-24s %-28s %s", k, op.device, clip(op.type, 24), clip(op.op, 28), op.reason))
  end
  print()
  print("segments:")
  for _, s in ipairs(p.segments) do
    local where = s["function"] or s.model
    print(string.format("  %-3s x%-4d %s%s", s.device, s.count, s.count == 1 and s.first or (s.first .. " .. " .. s.last),
      where and ("  [" .. where .. "]") or ""))
  end
  local costly = 0
  for _, t in ipairs(p.transitions) do
    if t.cost == "costly" then costly = costly + 1 end
  end
  print()
  print(string.format("coverage: ANE %s of ops, %s of estimated work; %d device switch(es)%s", pct(p.ane_coverage.ops),
    pct(p.ane_coverage.work), #p.transitions, costly > 0 and string.format(" (%d costly ANE<->GPU)", costly) or ""))
  print()
  print_fixes(p, findings, cu)
  m:close()
  return 0
end

return main(arg or {})
