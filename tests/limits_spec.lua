-- The mlsh program under an address-space limit (`ulimit -v`, RLIMIT_AS): the heap's huge-page
-- reserve at start and compress's own reserve take at most an eighth of the limit (bigbuf.h), so a
-- limited process still has room to map its model. A build whose allocator needs more address
-- space than any such limit (AddressSanitizer's shadow memory) cannot start under one: pending.
local B = require "mlsh.builder"
local F = require "fixtures"

local BIN = os.getenv("MLSH_BIN") or "./mlsh"
local HOME = os.getenv("MLSH_HOME") or "."
local dir = F.tmpdir()
local LIMIT_KB = 150 * 1024

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function limited(args)
  local cmd = string.format("ulimit -v %d && MLSH_HOME=%s exec %s %s >/dev/null 2>%s/stderr", LIMIT_KB, q(HOME), q(BIN), args, dir)
  local ok, _, code = os.execute(cmd)
  return ok and 0 or code
end
local function last_stderr()
  local f = io.open(dir .. "/stderr")
  local s = f and f:read("a") or ""
  if f then f:close() end
  return s
end

describe("mlsh under an address-space limit", function()
  -- 2 x 2048 x 2048 fp16 weights: a 16.8 MB weight file
  local path = dir .. "/limits.mlpackage"
  local p = B.program { opset = "iOS18", precision = "fp16" }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 2048 })
  local y = B.layers.linear(f, x, { name = "fc1", out = 2048 })
  f:output("y", B.layers.linear(f, y, { name = "fc2", out = 2048 }))
  p:save(path)

  local starts = limited("--version") == 0
  local run = starts and it or pending

  run("opens, checks and compresses a model with " .. LIMIT_KB // 1024 .. " MiB of address space", function()
    assert.are.equal(0, limited("info " .. q(path)), last_stderr())
    assert.are.equal(0, limited("weights " .. q(path)), last_stderr())
    for _, mode in ipairs({ "--quantize int8", "--prune 0.5", "--palettize 4" }) do
      local out = dir .. "/limited_out.mlpackage"
      assert.are.equal(0, limited(string.format("compress %s -o %s --quiet %s", q(path), q(out), mode)), mode .. ": " .. last_stderr())
      assert.are.equal(0, limited("info " .. q(out)), last_stderr())
    end
  end)
end)
