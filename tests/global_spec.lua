-- The `mlsh` global: scripts, -e code and the REPL find the API already there (the same table
-- `require "mlsh"` returns); a --safe script gets the sandbox's read-only view.
local F = require "fixtures"

describe("the mlsh global", function()
  local fx, dir
  setup(function()
    fx = F.shared()
    dir = F.tmpdir()
  end)

  it("is there in -e code and is what require returns", function()
    local out, err, code = F.run("-e " .. F.q("local m = mlsh.load(" .. string.format("%q", fx.pkg)
      .. ") print(mlsh == require('mlsh'), m.spec_version, type(mlsh.try_load))"))
    assert.equal(0, code, err)
    assert.equal("true\t7\tfunction\n", out)
  end)

  it("is there in a script run by `mlsh script.lua`", function()
    local s = dir .. "/s.lua"
    F.write(s, "local m = mlsh.load(arg[1])\nprint(mlsh == require 'mlsh', #m:ops() > 0, m.model_type)\n")
    local out, err, code = F.run(F.q(s) .. " " .. F.q(fx.pkg))
    assert.equal(0, code, err)
    assert.equal("true\ttrue\tmlProgram\n", out)
  end)

  it("is the read-only view in a --safe script", function()
    local s = dir .. "/safe.lua"
    F.write(s, table.concat({
      "local m = mlsh.load(arg[1])",
      "print(mlsh == require 'mlsh', mlsh.core == nil, m.spec_version)",
      "print(pcall(function() return m.save end))",
    }, "\n"))
    local out, err, code = F.run("--safe " .. F.q(s) .. " " .. F.q(fx.pkg))
    assert.equal(0, code, err)
    local l1, l2 = out:match("^([^\n]*)\n([^\n]*)\n$")
    assert.equal("true\ttrue\t7", l1)
    assert.matches("^false\t.*save is not available", l2)
  end)

  it("is in the REPL's environment", function()
    local out, err, code = F.run("-e " .. F.q("print(require('mlsh.cli.repl').environment().mlsh == mlsh)"))
    assert.equal(0, code, err)
    assert.equal("true\n", out)
  end)
end)
