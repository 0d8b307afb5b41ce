-- The shape of the Lua layer, read from the sources (no module is loaded): the require graph has
-- no cycle and no upward edge (nothing outside cmd/ and cli/ requires cmd/ or cli/), every
-- required mlsh module exists, no source uses a pre-folder module name, and only the Graphviz
-- place (lua/mlsh/graph.lua) starts processes. Files stay under 600 lines and functions under 80
-- (lua/mlsh/onnx included, since its rewrite landed).
local HOME = os.getenv("MLSH_HOME") or "."
local ROOT = HOME .. "/lua"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Every .lua under lua/mlsh, by module name, listed by the C fs binding.
local function sources()
  local fs = require("mlsh.core").fs
  local out = {}
  local function walk(dir, mod)
    for _, e in ipairs(assert(fs.list(dir))) do
      local path = dir .. "/" .. e.name
      if e.dir then walk(path, mod .. "." .. e.name)
      elseif e.name:match("%.lua$") then
        local base = e.name:sub(1, -5)
        out[base == "init" and mod or (mod .. "." .. base)] = path
      end
    end
  end
  walk(ROOT .. "/mlsh", "mlsh")
  return out
end

-- The string-literal requires of a source (comments and strings other than require's are skipped
-- by matching only `require "x"`, `require 'x'`, `require("x")` and `require('x')`).
local function requires_of(src)
  local out = {}
  local code = src:gsub("%-%-%[(=*)%[.-%]%1%]", ""):gsub("%-%-[^\n]*", "")
  for name in code:gmatch("require%s*%(?%s*[\"']([%w_%.]+)[\"']") do out[#out + 1] = name end
  return out
end

local function is_top(mod) return mod:match("^mlsh%.cmd%.") or mod:match("^mlsh%.cli%.") or mod == "mlsh.cli" end

-- Built-in names provided by the C side or the binary.
local EXTERNAL = { ["mlsh.core"] = true, ["mlsh.home"] = true }

describe("the Lua layer", function()
  local files, graph
  setup(function()
    files = sources()
    graph = {}
    for mod, path in pairs(files) do graph[mod] = requires_of(read(path)) end
  end)

  it("finds its sources and their requires (the scanner itself works)", function()
    assert.truthy(files["mlsh"] and files["mlsh.engine.rules"] and files["mlsh.onnx.model"] and files["mlsh.cmd.ep"])
    local found = {}
    for _, r in ipairs(graph["mlsh.engine.rules"]) do found[r] = true end
    assert.truthy(found["mlsh.sandbox"], "rules requires the sandbox")
    assert.same({ "a.b", "c", "d.e" }, requires_of("local x = require 'a.b'\n-- require 'no'\nrequire(\"c\") require \"d.e\""))
  end)

  it("requires only modules that exist, under their current names", function()
    local legacy = require("mlsh").LEGACY_MODULES
    local bad = {}
    for mod, reqs in pairs(graph) do
      for _, r in ipairs(reqs) do
        if r:match("^mlsh%f[%.%z]") and not files[r] and not EXTERNAL[r] and not r:match("^mlsh%.core%.") then
          bad[#bad + 1] = mod .. " -> " .. r
        elseif legacy[r] then
          bad[#bad + 1] = mod .. " -> " .. r .. " (now " .. legacy[r] .. ")"
        end
      end
    end
    table.sort(bad)
    assert.same({}, bad)
  end)

  it("has no upward edge: only cmd/ and cli/ require cmd/ or cli/", function()
    local bad = {}
    for mod, reqs in pairs(graph) do
      for _, r in ipairs(reqs) do
        if is_top(r) and not is_top(mod) then bad[#bad + 1] = mod .. " -> " .. r end
      end
    end
    table.sort(bad)
    assert.same({}, bad)
  end)

  it("has no require cycle", function()
    local state, stack, cycles = {}, {}, {}
    local function visit(mod)
      state[mod] = "open"
      stack[#stack + 1] = mod
      for _, r in ipairs(graph[mod] or {}) do
        if files[r] then
          if state[r] == "open" then
            local from = 1
            for i, s in ipairs(stack) do if s == r then from = i end end
            cycles[#cycles + 1] = table.concat(stack, " -> ", from) .. " -> " .. r
          elseif not state[r] then visit(r) end
        end
      end
      stack[#stack] = nil
      state[mod] = "done"
    end
    local mods = {}
    for mod in pairs(files) do mods[#mods + 1] = mod end
    table.sort(mods)
    for _, mod in ipairs(mods) do if not state[mod] then visit(mod) end end
    assert.same({}, cycles)
  end)

  it("detects a cycle and an upward edge when there is one (the checks can fail)", function()
    local g = { a = { "b" }, b = { "a" } }
    local seen, found = {}, false
    local function dfs(m, open)
      open[m] = true
      for _, r in ipairs(g[m]) do
        if open[r] then found = true elseif not seen[r] then dfs(r, open) end
      end
      open[m], seen[m] = nil, true
    end
    dfs("a", {})
    assert.is_true(found)
    assert.truthy(is_top("mlsh.cmd.check") and is_top("mlsh.cli.args") and not is_top("mlsh.engine.rules"))
  end)

  it("starts no process outside the Graphviz place", function()
    local bad = {}
    for mod, path in pairs(files) do
      local code = read(path):gsub("%-%-[^\n]*", "")
      if mod ~= "mlsh.graph" and (code:find("io%.popen") or code:find("os%.execute")) then bad[#bad + 1] = mod end
    end
    table.sort(bad)
    assert.same({}, bad)
  end)

  -- Function length by indentation: a line opening a function runs to the first `end` at its
  -- indentation (the project's style; luacheck guards the syntax).
  local function long_functions(src, max)
    local lines, out = {}, {}
    for l in (src .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
    for i, l in ipairs(lines) do
      local ind, rest = l:match("^(%s*)(.*)$")
      if not rest:match("^%-%-") and rest:match("function[%s%w_%.:]*%(") and not rest:match("end%)?,?%s*$") then
        for j = i + 1, #lines do
          local ind2, r2 = lines[j]:match("^(%s*)(.*)$")
          if #ind2 <= #ind and r2:match("^end") then
            if j - i + 1 > max then out[#out + 1] = string.format("line %d: %d lines", i, j - i + 1) end
            break
          end
          if #ind2 < #ind and r2 ~= "" then break end
        end
      end
    end
    return out
  end

  it("keeps files under 600 lines and functions under 80", function()
    local bad = {}
    for _, path in pairs(files) do
      local src = read(path)
      local n = select(2, src:gsub("\n", ""))
      if n > 600 then bad[#bad + 1] = string.format("%s: %d lines", path, n) end
      for _, f in ipairs(long_functions(src, 80)) do bad[#bad + 1] = path .. ":" .. f end
    end
    table.sort(bad)
    assert.same({}, bad)
    -- the measure itself: a 90-line function is found, an 80-line one is not
    local body = string.rep("  x = 1\n", 88)
    assert.equal(1, #long_functions("local function f()\n" .. body .. "end\n", 80))
    assert.equal(0, #long_functions("local function f()\n" .. string.rep("  x = 1\n", 78) .. "end\n", 80))
  end)
end)
