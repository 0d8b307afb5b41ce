-- ref_math.lua — naive reference arithmetic for the interpreter specs (an independent path: plain
-- loops and series in double, never the interpreter's kernels).
local R = {}

-- erf by its Maclaurin series, summed in double far below fp32 precision (|x| < 4 here).
function R.erf(x)
  local sum, term, k = x, x, 0
  repeat
    k = k + 1
    term = -term * x * x / k
    local add = term / (2 * k + 1)
    sum = sum + add
  until math.abs(add) < 1e-17 or k > 300
  return 2 / math.sqrt(math.pi) * sum
end

-- fn applied to every element of t.
function R.map(t, fn)
  local o = {}
  for i = 1, #t do o[i] = fn(t[i]) end
  return o
end

-- A [m, k] x B [k, n], row-major.
function R.matmul(A, B, m, n, k)
  local out = {}
  for i = 0, m - 1 do
    for j = 0, n - 1 do
      local acc = 0
      for q = 0, k - 1 do acc = acc + A[i * k + q + 1] * B[q * n + j + 1] end
      out[#out + 1] = acc
    end
  end
  return out
end

-- MIL linear: X [m, k], weight Wt [n, k], bias b [n] -> [m, n].
function R.linear(X, Wt, b, m, n, k)
  local out = {}
  for i = 0, m - 1 do
    for j = 0, n - 1 do
      local acc = b[j + 1]
      for q = 0, k - 1 do acc = acc + X[i * k + q + 1] * Wt[j * k + q + 1] end
      out[#out + 1] = acc
    end
  end
  return out
end

return R
