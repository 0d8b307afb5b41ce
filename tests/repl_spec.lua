-- The REPL driven through standard input (a pty session is in the REPL issue's tests).
local F = require "fixtures"

local function repl(input)
  local f = os.tmpname()
  F.write(f, input)
  local out, err, code = F.run("< " .. F.q(f))
  os.remove(f)
  return out, err, code
end

describe("mlsh REPL", function()
  local fx
  setup(function() fx = F.shared() end)

  it("prints expression values and runs statements", function()
    local out, err, code = repl("1 + 2\nx = 40\nx + 2\n")
    assert.equal(0, code, err)
    assert.truthy(out:find("3\n", 1, true))
    assert.truthy(out:find("42\n", 1, true))
  end)

  it("continues incomplete input and survives errors", function()
    local out, err = repl("for i = 1, 3 do\nio.write(i)\nend\nerror('nope')\n'after'\n")
    assert.truthy(out:find("123", 1, true))
    assert.truthy(err:find("nope", 1, true))
    assert.truthy(out:find("after", 1, true))
  end)

  it("opens models and prints them as summaries", function()
    local out, err = repl("m = open(" .. string.format("%q", fx.pkg) .. ")\nm\nm:ops()[3]\n")
    assert.equal("", err)
    assert.truthy(out:find("spec version 7, mlProgram", 1, true))
    assert.truthy(out:find("linear linear_0 -> lin:fp16[1,8]", 1, true))
  end)

  it("completes globals, methods and fields", function()
    local r = require "mlsh.cli.repl"
    local env = r.environment()
    env.m = require("mlsh").load(fx.pkg)
    local c = r.complete(env, "m:fun", "m:fun")
    assert.same({ "m:functions" }, c)
    local g = r.complete(env, "mls", "mls")
    assert.same({ "mlsh" }, g)
    local s = r.complete(env, "spec_v", "m.spec_v")
    assert.same({}, s, "property completion needs the object prefix")
    assert.truthy(#r.complete(env, "m.spec_v", "m.spec_v") == 1)
  end)

  it("hides _private members unless asked for them by their underscore", function()
    local r = require "mlsh.cli.repl"
    local env = r.environment()
    env.m = require("mlsh").load(fx.pkg)
    env.t = { visible = 1, _hidden = 2 }
    for _, c in ipairs(r.complete(env, "m:", "m:")) do assert.falsy(c:match("^m:_"), c) end
    assert.truthy(#r.complete(env, "m:", "m:") > 5)
    assert.same({ "t.visible" }, r.complete(env, "t.", "t."))
    assert.same({ "m:_format" }, r.complete(env, "m:_form", "m:_form"))
    assert.same({ "t._hidden" }, r.complete(env, "t._", "t._"))
  end)

  it("completes paths without a shell: $(...) in a typed path runs nothing", function()
    local r = require "mlsh.cli.repl"
    local dir = F.tmpdir()
    F.write(dir .. "/model_a.mlmodel", "x")
    local marker = dir .. "/ran"
    assert.same({ "model_a.mlmodel" }, r.complete(r.environment(), "mod", "open('" .. dir .. "/mod"))
    local typed = "open('" .. dir .. "/$(touch " .. marker .. ")/"
    r.complete(r.environment(), "", typed)
    assert.is_nil(require("mlsh.core").fs.exists(marker))
  end)
end)

