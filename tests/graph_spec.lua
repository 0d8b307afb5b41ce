-- mlsh graph: DOT coloured by predicted device with segments boxed, .svg through graphviz's dot
-- (a stand-in dot on PATH checks the call; the real one is used when installed), and the errors:
-- unknown output extension, dot missing, dot failing.
local F = require "fixtures"
local P = require "playbook_fixtures"
local graph = require "mlsh.graph"
local mlsh = require "mlsh"

local BIN = os.getenv("MLSH_BIN") or "./mlsh"

local function run(args, env)
  local errf = os.tmpname()
  local p = io.popen(string.format("%s%s %s 2>%s", env and ("env " .. env .. " ") or "", BIN, args, errf))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = F.read(errf)
  os.remove(errf)
  return out, err, code
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

-- A folder for PATH holding `ls` (rule discovery lists folders) and, optionally, a `dot` script.
local function bin_dir(dot_script)
  local d = F.tmpdir()
  os.execute("ln -s \"$(command -v ls)\" " .. F.q(d .. "/ls"))
  if dot_script then
    F.write(d .. "/dot", dot_script)
    os.execute("chmod +x " .. F.q(d .. "/dot"))
  end
  return d
end

describe("mlsh graph", function()
  local R
  setup(function() R = P.shared().rules end)

  it("colours ops by predicted device, boxes segments and marks device switches", function()
    local m = assert(mlsh.load(R.dilated_prog))
    local dot, p = graph.dot(m, { calibrated = false }) -- a tiny fixture: the first stage's segments
    assert.matches("^digraph mlsh {", dot)
    assert.equal(3, #p.segments)
    assert.matches('subgraph cluster_seg1 {\n%s+label="ANE segment 1 %(3 ops%)"', dot)
    assert.matches('label="GPU segment 2 %(1 op%)"', dot)
    assert.matches('n4 %[label="conv\\nconv2", fillcolor="#cfe2ff"', dot)
    assert.matches('n2 %[label="conv\\nconv1", fillcolor="#c8f0cf"', dot)
    assert.matches('n3 %-> n4 %[color="#d93025", penwidth=2.0, label="ANE→GPU"', dot)
    assert.matches("n4 %-> n5 %[color=\"#d93025\"", dot)
    assert.matches("n1 %-> n2;", dot)
    assert.matches('s1_in_x %[label="input x"', dot)
    assert.matches("n8 %-> s1_out_y;", dot)
    assert.is_nil(dot:find('label="const\\n', 1, true), "constants are not drawn")
    -- compute units change the colours: CPU only paints everything grey in one segment
    dot = graph.dot(m, { compute_units = "CPU_ONLY" })
    assert.matches('label="CPU segment 1 %(8 ops%)"', dot)
    assert.is_nil(dot:match('n%d+ %[label="[^"]*", fillcolor="#c8f0cf"'), "no op is green on the CPU")
    m:close()
  end)

  it("draws NeuralNetwork layers, pipelines and multi-function models", function()
    local out, err, code = run("graph " .. F.q(R.nn_gather))
    assert.equal(0, code, err)
    assert.matches('label="gather\\ngather"', out)
    assert.matches('label="ANE→CPU"', out)
    out, err, code = run("graph " .. F.q(R.pipeline))
    assert.equal(0, code, err)
    assert.matches("subgraph cluster_s1_seq", out)
    assert.matches("subgraph cluster_s2_seq", out)
    local multi = F.write_package(F.tmpdir() .. "/multi.mlpackage",
      F.mlprogram({ functions = { "main_a", "main_b" }, spec = 9, opset = "CoreML8", default = "main_b" }))
    out, err, code = run("graph " .. F.q(multi))
    assert.equal(0, code, err)
    assert.matches('label="main_b"', out)
    assert.matches('label="main_a"', out)
  end)

  it("writes .dot files", function()
    local path = F.tmpdir() .. "/g.dot"
    local out, err, code = run("graph " .. F.q(R.dilated_prog) .. " -o " .. F.q(path))
    assert.equal(0, code, err)
    assert.equal("", out)
    assert.matches("wrote .*g%.dot", err)
    assert.matches("^digraph mlsh", F.read(path))
  end)

  it("makes .svg through dot on PATH", function()
    local d = bin_dir("#!/bin/sh\n# stand-in for graphviz: record the call, write a tiny svg\n"
      .. "echo \"$@\" > \"${0%/*}/args\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && out=\"$2\"; shift; done\n"
      .. "echo '<svg>stand-in</svg>' > \"$out\"\n")
    local path = F.tmpdir() .. "/g.svg"
    local _, err, code = run("graph " .. F.q(R.dilated_prog) .. " -o " .. F.q(path), "PATH=" .. F.q(d))
    assert.equal(0, code, err)
    assert.equal("<svg>stand-in</svg>\n", F.read(path))
    assert.matches("^%-Tsvg %-o " .. path:gsub("%p", "%%%0") .. " ", F.read(d .. "/args"))
  end)

  it("says clearly when dot is missing or fails, exit 2", function()
    local path = F.tmpdir() .. "/g.svg"
    local out, err, code = run("graph " .. F.q(R.dilated_prog) .. " -o " .. F.q(path), "PATH=" .. F.q(bin_dir()))
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("graphviz's 'dot' is not installed, so no %.svg can be made %(install graphviz", err)
    assert.matches("%-o .*g%.dot", err)
    assert.is_false(exists(path))
    local failing = bin_dir("#!/bin/sh\necho 'syntax error in line 3' >&2\nexit 1\n")
    out, err, code = run("graph " .. F.q(R.dilated_prog) .. " -o " .. F.q(path), "PATH=" .. F.q(failing))
    assert.equal(2, code)
    assert.matches("dot failed: syntax error in line 3", err)
  end)

  it("refuses an output path with an unknown extension, and other bad input", function()
    local dir = F.tmpdir()
    local cases = {
      { "graph " .. F.q(R.dilated_prog) .. " -o " .. F.q(dir .. "/g.png"), "g%.png: unknown output extension '%.png' %(use %.dot or %.svg%)" },
      { "graph " .. F.q(R.dilated_prog) .. " -o " .. F.q(dir .. "/graph"), "unknown output extension %(use %.dot or %.svg%)" },
      { "graph", "no model given" },
      { "graph " .. F.q(R.not_model), "not a Core ML model" },
      { "graph --compute-units tpu " .. F.q(R.dilated_prog), "unknown compute units 'tpu'" },
      { "graph " .. F.q(R.dilated_prog) .. " -o", "%-o needs a value" },
    }
    for _, c in ipairs(cases) do
      local out, err, code = run(c[1])
      assert.equal(2, code, c[1] .. ": " .. err)
      assert.equal("", out, c[1])
      assert.matches(c[2], err)
    end
    assert.is_false(exists(dir .. "/g.png"))
  end)

  local real_dot = graph.find_dot()
  if real_dot then
    it("renders a real .svg with graphviz", function()
      local path = F.tmpdir() .. "/g.svg"
      local _, err, code = run("graph --static " .. F.q(R.dilated_prog) .. " -o " .. F.q(path))
      assert.equal(0, code, err)
      local svg = F.read(path)
      assert.matches("<svg", svg)
      assert.matches("GPU segment 2", svg)
    end)
  else
    pending("renders a real .svg with graphviz (graphviz's dot is not installed)")
  end
end)
