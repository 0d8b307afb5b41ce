-- interp_nn_flow_spec.lua — NeuralNetwork control flow on the interpreter (nn_flow.c): branch
-- (ifBranch / elseBranch on a condition blob), loop (a condition network with conditionVar, a
-- count from maxLoopIterations or an input, a body network rewriting blobs by name) and copy.
-- Models are spelled out as messages here, the BranchLayerParams / LoopLayerParams wire-encoded
-- (mlsh's schema subset leaves them opaque); expected values come from naive loops. Errors too.
local mlsh = require "mlsh"
local core = require "mlsh.core"
local wire = require "mlsh.builder.wire"
local F = require "fixtures"
local IH = require "interp_helpers"

local P = core.proto
local dir = F.tmpdir()
local tensor, close = IH.tensor, IH.close
local n = 0

-- layers: {kind, name, inputs, outputs, params bytes}
local function net(msg, layers)
  for _, d in ipairs(layers) do
    local l = msg:add("layers")
    l.name, l.input, l.output = d[2], d[3], d[4]
    l[d[1]] = assert(P.decode("CoreML.Specification.LayerParams", d[5] or ""))
  end
  return msg
end

local function subnet(layers) return net(P.new("CoreML.Specification.NeuralNetwork"), layers):encode() end

local function feature(d, field, name, shape)
  local f = d:add(field)
  f.name = name
  local a = f:mutable("type"):mutable("multiArrayType")
  a.shape = shape
  a.dataType = "FLOAT32"
end

-- ins / outs: {{name, shape}...}
local function model(ins, outs, layers)
  local m = P.new("CoreML.Specification.Model")
  m.specificationVersion = 4
  local d = m:mutable("description")
  for _, f in ipairs(ins) do feature(d, "input", f[1], f[2]) end
  for _, f in ipairs(outs) do feature(d, "output", f[1], f[2]) end
  local nn = m:mutable("neuralNetwork")
  nn.arrayInputShapeMapping = "EXACT_ARRAY_MAPPING"
  net(nn, layers)
  n = n + 1
  local p = string.format("%s/flow%d.mlmodel", dir, n)
  assert(core.fs.write_atomic(p, m:encode()))
  return p
end

local function run(p, inputs)
  local m = mlsh.load(p)
  local ok, outs = pcall(m.run, m, inputs, { precision = "fp32" })
  m:close()
  if not ok then error(outs, 0) end
  return outs
end

local function alpha(v) return wire.float(2, v) end
local function branch(ifnet, elsenet)
  return wire.bytes(1, ifnet) .. (elsenet and wire.bytes(2, elsenet) or "")
end

describe("NeuralNetwork branch, loop and copy on the interpreter", function()
  teardown(function() core.fs.remove_tree(dir) end)

  it("branch: the if or the else network writes y, read after the branch", function()
    local p = model({ { "x", { 3 } }, { "c", { 1 } } }, { { "z", { 3 } } }, {
      { "greaterThan", "gt", { "c" }, { "cond" }, alpha(0) },
      { "branch", "br", { "cond" }, {}, branch(subnet { { "multiplyBroadcastable", "sq", { "x", "x" }, { "y" } } },
        subnet { { "addBroadcastable", "dbl", { "x", "x" }, { "y" } } }) },
      { "addBroadcastable", "after", { "y", "x" }, { "z" } },
    })
    local x = { 1.5, -2, 0.25 }
    for _, c in ipairs({ 1, -1 }) do
      local want = {}
      for i = 1, 3 do want[i] = (c > 0 and x[i] * x[i] or x[i] + x[i]) + x[i] end
      close(run(p, { x = tensor(x, { 3 }), c = tensor({ c }, { 1 }) }).z, want, 1e-6)
    end
  end)

  it("branch without an else network keeps the earlier value of a blob it would rewrite", function()
    local p = model({ { "x", { 2 } }, { "c", { 1 } } }, { { "y", { 2 } } }, {
      { "copy", "cp", { "x" }, { "y" } },
      { "branch", "br", { "c" }, {}, branch(subnet { { "multiplyBroadcastable", "sq", { "x", "x" }, { "y" } } }) },
    })
    local x = { 3, -0.5 }
    close(run(p, { x = tensor(x, { 2 }), c = tensor({ 1 }, { 1 }) }).y, { 9, 0.25 }, 1e-6)
    close(run(p, { x = tensor(x, { 2 }), c = tensor({ 0 }, { 1 }) }).y, x, 1e-6)
  end)

  it("loop with a condition network: acc += x while i < 3.5, i += 1", function()
    local cond = subnet { { "lessThan", "lt", { "i" }, { "go" }, alpha(3.5) } }
    local body = subnet {
      { "addBroadcastable", "acc_add", { "acc", "x" }, { "acc" } },
      { "addBroadcastable", "inc", { "i", "one" }, { "i" } },
    }
    local p = model({ { "x", { 3 } }, { "i0", { 1 } }, { "one", { 1 } } }, { { "acc", { 3 } }, { "i", { 1 } } }, {
      { "copy", "acc0", { "x" }, { "acc" } },
      { "copy", "start", { "i0" }, { "i" } },
      { "loop", "lp", {}, {}, wire.bytes(2, "go") .. wire.bytes(3, cond) .. wire.bytes(4, body) },
    })
    local x = { 0.5, -1, 2 }
    for _, i0 in ipairs({ 0, 2, 5 }) do
      local acc, i = { x[1], x[2], x[3] }, i0
      while i < 3.5 do
        for k = 1, 3 do acc[k] = acc[k] + x[k] end
        i = i + 1
      end
      local outs = run(p, { x = tensor(x, { 3 }), i0 = tensor({ i0 }, { 1 }), one = tensor({ 1 }, { 1 }) })
      close(outs.acc, acc, 1e-6)
      close(outs.i, { i }, 1e-6)
    end
  end)

  it("loop counts: maxLoopIterations, or the count input when given", function()
    local body = subnet { { "multiplyBroadcastable", "twice", { "y", "two" }, { "y" } } }
    local fixed = model({ { "x", { 2 } }, { "two", { 1 } } }, { { "y", { 2 } } }, {
      { "copy", "y0", { "x" }, { "y" } },
      { "loop", "lp", {}, {}, wire.uint(1, 3) .. wire.bytes(4, body) },
    })
    local counted = model({ { "x", { 2 } }, { "two", { 1 } }, { "k", { 1 } } }, { { "y", { 2 } } }, {
      { "copy", "y0", { "x" }, { "y" } },
      { "loop", "lp", { "k" }, {}, wire.uint(1, 3) .. wire.bytes(4, body) },
    })
    local x = { 1, -0.75 }
    close(run(fixed, { x = tensor(x, { 2 }), two = tensor({ 2 }, { 1 }) }).y, { 8, -6 }, 1e-6)
    for _, k in ipairs({ 0, 1, 5 }) do
      local f = 2 ^ k
      close(run(counted, { x = tensor(x, { 2 }), two = tensor({ 2 }, { 1 }), k = tensor({ k }, { 1 }) }).y,
        { x[1] * f, x[2] * f }, 1e-6)
    end
  end)

  it("a branch nested in a loop body: acc + x while i < 2, then acc * 2, four iterations", function()
    local cond = subnet { { "lessThan", "lt", { "i" }, { "go" }, alpha(3.5) } }
    local body = subnet {
      { "lessThan", "early", { "i" }, { "small" }, alpha(2) },
      { "branch", "pick", { "small" }, {}, branch(subnet { { "addBroadcastable", "plus", { "acc", "x" }, { "acc" } } },
        subnet { { "multiplyBroadcastable", "times", { "acc", "two" }, { "acc" } } }) },
      { "addBroadcastable", "inc", { "i", "go" }, { "i" } },
    }
    local p = model({ { "x", { 2 } }, { "two", { 1 } }, { "i0", { 1 } } }, { { "acc", { 2 } } }, {
      { "copy", "acc0", { "x" }, { "acc" } },
      { "copy", "start", { "i0" }, { "i" } },
      { "loop", "lp", {}, {}, wire.bytes(2, "go") .. wire.bytes(3, cond) .. wire.bytes(4, body) },
    })
    local x = { 0.5, -1.25 }
    for _, i0 in ipairs({ 0, 1.5, 3 }) do
      local acc, i = { x[1], x[2] }, i0
      while i < 3.5 do
        for k = 1, 2 do acc[k] = i < 2 and acc[k] + x[k] or acc[k] * 2 end
        i = i + 1
      end
      close(run(p, { x = tensor(x, { 2 }), two = tensor({ 2 }, { 1 }), i0 = tensor({ i0 }, { 1 }) }).acc, acc, 1e-6)
    end
  end)

  it("a name only the branch not taken writes reads as an empty tensor; a runaway loop stops at its cap", function()
    local p = model({ { "x", { 2 } }, { "c", { 1 } } }, { { "t", { 2 } } }, {
      { "branch", "br", { "c" }, {}, branch(subnet { { "addBroadcastable", "tw", { "x", "x" }, { "t" } } }) },
    })
    close(run(p, { x = tensor({ 1, 2 }, { 2 }), c = tensor({ 1 }, { 1 }) }).t, { 2, 4 }, 1e-6)
    assert.same({ 0 }, run(p, { x = tensor({ 1, 2 }, { 2 }), c = tensor({ 0 }, { 1 }) }).t:shape())
    local cond = subnet { { "lessThan", "lt", { "x" }, { "go" }, alpha(1) } }
    local forever = model({ { "x", { 1 } } }, { { "acc", { 1 } } }, {
      { "copy", "acc0", { "x" }, { "acc" } },
      { "loop", "lp", {}, {}, wire.bytes(2, "go") .. wire.bytes(3, cond) ..
        wire.bytes(4, subnet { { "addBroadcastable", "more", { "acc", "x" }, { "acc" } } }) },
    })
    local ok, err = pcall(run, forever, { x = tensor({ 0 }, { 1 }) })
    assert.is_false(ok)
    assert.matches("65536 iterations", tostring(err))
  end)

  it("errors: no ifBranch, a missing conditionVar, a malformed sub-network, loopBreak", function()
    local function load_err(layers)
      local p = model({ { "x", { 2 } } }, { { "x2", { 2 } } }, layers)
      local ok, err = pcall(run, p, { x = tensor({ 1, 2 }, { 2 }) })
      assert.is_false(ok)
      return tostring(err)
    end
    local cp = { "copy", "cp", { "x" }, { "x2" } }
    assert.matches("has no ifBranch", load_err({ cp, { "branch", "br", { "x" }, {}, wire.bytes(2, subnet {}) } }))
    local cond = subnet { { "lessThan", "lt", { "x" }, { "go" }, alpha(1) } }
    assert.matches("does not write conditionVar 'stop'",
      load_err({ cp, { "loop", "lp", {}, {}, wire.bytes(2, "stop") .. wire.bytes(3, cond) } }))
    assert.matches("br: truncated or corrupt protobuf", load_err({ cp, { "branch", "br", { "x" }, {}, wire.bytes(1, "\255\255") } }))
    -- a loopBreak outside any loop body, and one in a condition network
    assert.matches("outside a loop body", load_err({ cp, { "loopBreak", "stop", {}, {} } }))
    local bad_cond = subnet { { "lessThan", "lt", { "x" }, { "go" }, alpha(9) }, { "loopBreak", "stop", {}, {} } }
    assert.matches("condition network",
      load_err({ cp, { "loop", "lp", {}, {}, wire.bytes(2, "go") .. wire.bytes(3, bad_cond) } }))
  end)

  -- body: i += 1; if i > limit: loopBreak; if i is even: loopContinue; acc += x  (at most 9 times)
  it("loopBreak ends the loop and loopContinue skips the rest of the body, from inside branches", function()
    local body = subnet {
      { "addBroadcastable", "inc", { "i", "one" }, { "i" } },
      { "greaterThan", "over", { "i", "limit" }, { "stop" } },
      { "branch", "maybe_stop", { "stop" }, {}, branch(subnet { { "loopBreak", "brk", {}, {} } }) },
      { "multiplyBroadcastable", "half", { "i", "halfc" }, { "h" } },
      { "floor", "fl", { "h" }, { "hf" } },
      { "equal", "even", { "h", "hf" }, { "is_even" } },
      { "branch", "maybe_skip", { "is_even" }, {}, branch(subnet { { "loopContinue", "cont", {}, {} } }) },
      { "addBroadcastable", "acc_add", { "acc", "x" }, { "acc" } },
    }
    local p = model({ { "x", { 2 } }, { "one", { 1 } }, { "halfc", { 1 } }, { "limit", { 1 } }, { "i0", { 1 } } },
      { { "acc", { 2 } }, { "i", { 1 } } }, {
        { "copy", "acc0", { "x" }, { "acc" } },
        { "copy", "start", { "i0" }, { "i" } },
        { "loop", "lp", {}, {}, wire.uint(1, 9) .. wire.bytes(4, body) },
      })
    local x = { 1.5, -2 }
    for _, limit in ipairs({ 0, 3, 6, 20 }) do
      local acc, i = { x[1], x[2] }, 0
      for _ = 1, 9 do
        i = i + 1
        if i > limit then break end
        if i % 2 ~= 0 then acc[1], acc[2] = acc[1] + x[1], acc[2] + x[2] end
      end
      local outs = run(p, { x = tensor(x, { 2 }), one = tensor({ 1 }, { 1 }), halfc = tensor({ 0.5 }, { 1 }),
        limit = tensor({ limit }, { 1 }), i0 = tensor({ 0 }, { 1 }) })
      close(outs.acc, acc, 1e-6)
      close(outs.i, { i }, 1e-6)
    end
  end)
end)
