-- --safe: rule folders and scripts from elsewhere cannot reach files, run forever or eat memory.
local F = require "fixtures"
local json = require "mlsh.json"

local RULES = {
  escape = [[return { id = "escape", title = "t", categories = { "deploy" }, severity = "warning", pattern = false,
    check = function(m, ctx) require("io").open(OUT .. "/pwned", "w"):write("x") end }]],
  spin = [[return { id = "spin", title = "t", categories = { "deploy" }, severity = "warning", pattern = false,
    check = function(m, ctx) while true do end end }]],
  hog = [[return { id = "hog", title = "t", categories = { "deploy" }, severity = "warning", pattern = false,
    check = function(m, ctx) local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 64) .. i end end }]],
  saver = [[return { id = "saver", title = "t", categories = { "deploy" }, severity = "warning", pattern = false,
    check = function(m, ctx) m:save(OUT .. "/copy.mlmodel") end }]],
  loader = [[return { id = "loader", title = "t", categories = { "deploy" }, severity = "warning", pattern = false,
    check = function(m, ctx) return load(string.dump(function() end)) end }]],
  fine = [[return { id = "fine", title = "t", categories = { "deploy" }, severity = "info", pattern = false,
    check = function(m, ctx) ctx:report { message = "spec " .. m.spec_version } end }]],
}

describe("safe mode", function()
  local fx, dir
  setup(function()
    fx = F.shared()
    dir = fx.dir .. "/safe"
    require("mlsh.core").fs.mkdir_p(dir .. "/rules")
    for id, src in pairs(RULES) do
      F.write(dir .. "/rules/" .. id .. ".lua", (src:gsub("OUT", string.format("%q", dir))))
    end
  end)

  local function check()
    local cmd = string.format("env MLSH_SAFE_INSTRUCTIONS=2000000 MLSH_SAFE_MEMORY_MB=16 %s --safe check --no-builtin --format json --rules %s %s",
      os.getenv("MLSH_BIN"), F.q(dir .. "/rules"), F.q(fx.nn))
    local p = io.popen(cmd .. " 2>/dev/null")
    local out = p:read("a")
    local _, _, code = p:close()
    return json.decode(out), code
  end

  it("turns every escape attempt into an error finding naming the rule, and the others still run", function()
    local o, code = check()
    assert.equal(1, code)
    local by = {}
    for _, f in ipairs(o.findings) do by[f.rule] = f.message end
    assert.truthy(by.escape:find("module 'io' is not available to rules", 1, true), by.escape)
    assert.truthy(by.spin:find("rule spin exceeded its budget of 2000000 instructions", 1, true), by.spin)
    assert.truthy(by.hog:find("rule hog exceeded its memory budget of 16 MiB", 1, true), by.hog)
    assert.truthy(by.saver:find("save is not available to rules", 1, true), by.saver)
    assert.truthy(by.loader:find("load", 1, true), by.loader)
    assert.equal("spec 4", by.fine)
    assert.is_nil(require("mlsh.core").fs.exists(dir .. "/pwned"))
    assert.is_nil(require("mlsh.core").fs.exists(dir .. "/copy.mlmodel"))
  end)

  it("runs a recipe sandboxed: analysis works, file access does not", function()
    local home = os.getenv("MLSH_HOME")
    local out, err, code = F.run("--safe " .. F.q(home .. "/recipes/ane-readiness.lua") .. " " .. F.q(fx.nn))
    assert.equal(0, code, err)
    assert.truthy(out:find("coverage", 1, true), out)
    local script = dir .. "/sneaky.lua"
    F.write(script, "local m = mlsh.load(arg[1])\nprint(m.spec_version)\nos.execute('touch " .. dir .. "/touched')\n")
    out, err, code = F.run("--safe " .. F.q(script) .. " " .. F.q(fx.nn))
    assert.equal(1, code)
    assert.equal("4\n", out)
    assert.truthy(err:find("execute", 1, true), err)
    assert.is_nil(require("mlsh.core").fs.exists(dir .. "/touched"))
  end)

  it("sandboxes checklist folders too: an item that reaches for io is reported, not run", function()
    local cdir = dir .. "/checklists"
    require("mlsh.core").fs.mkdir_p(cdir)
    F.write(cdir .. "/team.lua", string.format([[return { id = "team", title = "team list", items = {
      { id = "sneaky", text = "writes a file", check = function(m, ctx)
          require("io").open(%q, "w"):write("x") return "pass", "done" end },
      { id = "spec", text = "knows the spec", check = function(m, ctx) return "pass", "spec " .. m.spec_version end },
    } }]], dir .. "/pwned2"))
    local out, err, code = F.run("--safe checklist team " .. F.q(fx.nn) .. " --checklists " .. F.q(cdir) .. " --format json")
    local o = json.decode(out)
    local by = {}
    for _, it in ipairs(o.items) do by[it.id] = it end
    assert.equal("pass", by.spec.status, err)
    assert.equal("unknown", by.sneaky.status)
    assert.truthy(json.encode(o.notes):find("not available", 1, true), json.encode(o.notes))
    assert.is_nil(require("mlsh.core").fs.exists(dir .. "/pwned2"))
    assert.is_number(code)
  end)

  it("can be switched on from Lua with mlsh.safe()", function()
    local out, err, code = F.run("-e " .. F.q("print(require('mlsh').safe(), require('mlsh.rules').safe)"))
    assert.equal(0, code, err)
    assert.equal("true\ttrue\n", out)
  end)
end)
