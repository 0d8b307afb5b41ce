-- The mlsh program: info (text and JSON contract), scripts, -e, exit statuses, error lines.
local json = require "mlsh.json"
local F = require "fixtures"

describe("mlsh command line", function()
  local fx
  setup(function() fx = F.shared() end)

  it("prints a human summary with mlsh info", function()
    local out, err, code = F.run("info " .. F.q(fx.pkg))
    assert.equal(0, code, err)
    assert.truthy(out:find("spec version 7, mlProgram", 1, true))
    assert.truthy(out:find("function main <CoreML6>: 4 ops", 1, true))
    assert.truthy(out:find("input   x: multiArray fp16[1x16]", 1, true))
  end)

  it("prints one JSON object with the fixed keys", function()
    local out, err, code = F.run("info --json " .. F.q(fx.multi))
    assert.equal(0, code, err)
    local o = json.decode(out)
    assert.equal("mlpackage", o.format)
    assert.equal(9, o.spec_version)
    assert.equal("mlProgram", o.model_type)
    assert.equal(false, o.is_updatable)
    assert.equal("main_b", o.default_function)
    assert.equal(2, #o.functions)
    local f = o.functions[1]
    assert.equal("main_b", f.name)
    assert.equal("CoreML8", f.opset)
    assert.equal("x", f.inputs[1].name)
    assert.same({ 1, 16 }, f.inputs[1].shape)
    assert.equal(json.null, f.inputs[1].flexibility)
    assert.equal("const", f.ops[1].type)
    assert.equal("W", f.ops[1].name)
    assert.equal(4, o.op_histogram.const)
    assert.equal(2, o.weights.count)
    assert.equal("weights/weight.bin", o.weights.files[1].path)
    for _, k in ipairs({ "inputs", "outputs", "states", "metadata" }) do assert.not_nil(o[k], k) end
    for _, k in ipairs({ "author", "license", "short_description", "version", "user_defined" }) do
      assert.not_nil(o.metadata[k], k)
    end
  end)

  it("describes neural networks, flexibility and pipelines in JSON", function()
    local o = json.decode((F.run("info --json " .. F.q(fx.nn_flex))))
    assert.equal("neuralNetwork", o.model_type)
    assert.same({ kind = "range", ranges = { { 3, 3 }, { 8, 64 }, { 8, -1 } } }, o.inputs[1].flexibility)
    assert.equal("convolution", o.layers[1].type)
    assert.equal(1, o.layer_histogram.innerProduct)
    local p = json.decode((F.run("info --json " .. F.q(fx.pipeline))))
    assert.equal(2, #p.pipeline)
    assert.equal("neuralNetwork", p.pipeline[2].model_type)
    assert.equal(4, #p.pipeline[2].layers)
    local z = json.decode((F.run("info --json " .. F.q(fx.zip))))
    assert.equal("mlpackage.zip", z.format)
  end)

  for _, key in ipairs({ "not_model", "truncated", "corrupt_zip", "no_root", "plain_dir", "short_weights", "empty" }) do
    it("exits 1 with one error line for " .. key, function()
      local path = fx[key]
      local before = F.sha(path)
      local out, err, code = F.run("info " .. F.q(path))
      assert.equal(1, code)
      assert.equal("", out)
      assert.truthy(err:match("^mlsh: [^\n]+\n$"), err)
      assert.truthy(err:find(path, 1, true), err)
      assert.equal(before, F.sha(path))
    end)
  end

  it("reads a spec shipped without its weight file, with a warning", function()
    local out, err, code = F.run("info " .. F.q(fx.no_weights))
    assert.equal(0, code, err)
    assert.truthy(out:find("weight file weights/weight.bin is missing", 1, true))
    local o = json.decode((F.run("info --json " .. F.q(fx.no_weights))))
    assert.same({ "weights/weight.bin" }, o.weights.missing_files)
    assert.equal(1, o.weights.count)
  end)

  it("exits 1 for a missing file and 2 for bad usage", function()
    local _, err, code = F.run("info " .. F.q(fx.dir .. "/missing.mlpackage"))
    assert.equal(1, code)
    assert.truthy(err:find("No such file", 1, true))
    local _, _, c2 = F.run("info")
    assert.equal(2, c2)
    local _, e3, c3 = F.run("info --bogus x")
    assert.equal(2, c3)
    assert.truthy(e3:find("unknown option", 1, true))
    local _, e4, c4 = F.run("--bogus")
    assert.equal(2, c4)
    assert.truthy(e4:find("unknown option", 1, true))
  end)

  it("runs -e code and scripts with arg", function()
    local out, err, code = F.run("-e " .. F.q("print(require('mlsh').load(" .. string.format("%q", fx.nn) .. ").spec_version)"))
    assert.equal(0, code, err)
    assert.equal("4\n", out)
    local script = fx.dir .. "/script.lua"
    F.write(script, "local mlsh = require 'mlsh'\nprint(#arg, arg[1], mlsh.load(arg[1]).model_type)\nreturn 3\n")
    out, err, code = F.run(F.q(script) .. " " .. F.q(fx.pkg))
    assert.equal(3, code, err)
    assert.equal("1\t" .. fx.pkg .. "\tmlProgram\n", out)
  end)

  it("reports a script error with exit 1", function()
    local _, err, code = F.run("-e " .. F.q("error('boom')"))
    assert.equal(1, code)
    assert.truthy(err:find("boom", 1, true))
  end)

  it("lets Ctrl-C interrupt a long computation", function()
    local bin = os.getenv("MLSH_BIN")
    local p = io.popen("sh -c '" .. bin .. " -e \"while true do end\" 2>&1 & pid=$!; sleep 0.5; kill -INT $pid; wait $pid; echo rc=$?'")
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("interrupted!", 1, true), out)
    assert.truthy(out:find("rc=1", 1, true), out)
  end)

  it("works installed, with the source tree out of reach", function()
    local prefix = fx.dir .. "/install"
    local moved = fx.dir .. "/moved"
    local home = os.getenv("MLSH_HOME")
    local ok = os.execute(string.format("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C %s install PREFIX=%s >/dev/null 2>&1 && rm -rf %s && cp -R %s %s",
      F.q(home), F.q(prefix), F.q(moved), F.q(prefix), F.q(moved)))
    assert.is_true(ok)
    local p = io.popen(string.format("cd / && env -u MLSH_HOME %s/bin/mlsh info %s 2>&1; echo rc=$?", F.q(moved), F.q(fx.nn)))
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("spec version 4, neuralNetwork", 1, true), out)
    assert.truthy(out:find("rc=0", 1, true), out)
    -- the man page, byte for byte the one in docs/
    local function slurp(path) local f = assert(io.open(path, "rb")) local s = f:read("a") f:close() return s end
    local page = slurp(moved .. "/share/man/man1/mlsh.1")
    assert.equal(slurp(home .. "/docs/mlsh.1"), page)
    assert.truthy(page:find("\n.TH MLSH 1 ", 1, true))
  end)

  it("prints help and version", function()
    local out, _, code = F.run("--help")
    assert.equal(0, code)
    assert.truthy(out:find("info", 1, true))
    out = F.run("--version")
    assert.truthy(out:match("^mlsh %d+%.%d+"))
  end)
end)
