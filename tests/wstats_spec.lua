-- Weight statistics streamed from the weight file (m:_blob_stats through w:stats()) against a
-- plain Lua loop over the decoded values.
local mlsh = require "mlsh"
local G = require "golden"

describe("w:stats() of a weight-file weight", function()
  it("matches a naive loop over its values, without building the array", function()
    local m <close> = mlsh.load(G.examples() .. "/mobilenet_like_good.mlpackage")
    local n = 0
    for _, w in ipairs(m:weights()) do
      if w.storage == "blob" then
        local st = w:stats()
        local v = w:values()
        local sum, sumsq, mn, mx, zeros = 0, 0, math.huge, -math.huge, 0
        for i = 1, #v do
          local x = v[i]
          sum, sumsq = sum + x, sumsq + x * x
          mn, mx = math.min(mn, x), math.max(mx, x)
          if x == 0 then zeros = zeros + 1 end
        end
        assert.equal(#v, st.count)
        assert.equal(mn, st.min)
        assert.equal(mx, st.max)
        assert.is_true(math.abs(st.sum - sum) <= 1e-9 * math.max(1, math.abs(sum)), w.name)
        assert.is_true(math.abs(st.sum_sq - sumsq) <= 1e-9 * math.max(1, sumsq), w.name)
        assert.equal(zeros / #v, st.sparsity)
        n = n + 1
      end
    end
    assert.is_true(n > 3)
  end)
  it("reports a short weight file as the values path does", function()
    local F = require "fixtures"
    local m <close> = mlsh.load(F.shared().short_weights)
    for _, w in ipairs(m:weights()) do
      if w.storage == "blob" then
        local ok1, e1 = pcall(w.values, w)
        local ok2, e2 = pcall(w.stats, w)
        assert.equal(ok1, ok2)
        if not ok1 then assert.equal(tostring(e1):gsub("^.-:%d+: ", ""), tostring(e2):gsub("^.-:%d+: ", "")) end
      end
    end
  end)
end)
