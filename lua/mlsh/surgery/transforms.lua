-- mlsh.surgery.transforms — the named passes of `mlsh fix`, one entry per command-line flag.
--   local t = transforms.BY_FLAG["--fp16"]     -- {flag, name, arg = "NAME=DIMS" | nil, run, parse}
--   local res, reason = t.run(editor, model, value, opts)   -- {changed = n} | nil, refusal reason
--   opts: keep (list of --keep-fp32 selectors), ["function"] (limit to one function)
-- A result with changed = 0 means the transform does not apply (nothing to fix).
local fp16 = require "mlsh.surgery.fp16"
local shapes = require "mlsh.surgery.shapes"
local retarget = require "mlsh.surgery.retarget"
local rewrite = require "mlsh.surgery.rewrite"
local dce = require "mlsh.surgery.dce"

local M = {}

local function each_function(e, o, fn)
  local names = o["function"] and { o["function"] } or e:function_names()
  local total = 0
  for _, name in ipairs(names) do
    local res, why = fn(e:func(name))
    if not res then return nil, why end
    total = total + res.changed
  end
  return { changed = total }
end

local function need_program(e, flag, m)
  if not e:is_program() then
    return nil, string.format("%s rewrites ML programs; this model is a %s", flag, tostring(m and m.model_type or "model without one"))
  end
  return true
end

M.LIST = {
  { flag = "--fp16", name = "fp16", nothing = "no op computes in fp32",
    run = function(e, m, _, o)
      local n = not e:is_program() and e:nn()
      if n then -- a NeuralNetwork: weights stored fp16
        local count, why = n:fp16_weights()
        if not count then return nil, why end
        return { changed = count }
      end
      local ok, why = need_program(e, "--fp16", m)
      if not ok then return nil, why end
      return each_function(e, o, function(f) return fp16.run(f, { keep = o.keep }) end)
    end },
  { flag = "--fix-shape", name = "fix-shape", arg = "NAME=DIMS", repeatable = true, nothing = "the input already has that static shape",
    parse = function(s)
      local name, dims = shapes.parse(s)
      if not name then return nil, dims end
      return { name = name, dims = dims }
    end,
    run = function(e, m, v, o)
      local ok, why = need_program(e, "--fix-shape", m)
      if not ok then return nil, why end
      return shapes.run(e, v.name, v.dims, o["function"])
    end },
  { flag = "--retarget", name = "retarget", arg = "iOS15|iOS16|iOS17", nothing = "the model already targets it or lower",
    parse = function(s)
      if not retarget.TARGETS[s] then return nil, "--retarget: expected iOS15, iOS16 or iOS17, got '" .. s .. "'" end
      return s
    end,
    run = function(e, m, v) return retarget.run(e, m, v) end },
  { flag = "--mask-fill", name = "mask-fill", arg = "VALUE", nothing = "no -inf or huge negative float consts",
    parse = function(s)
      local x = tonumber(s)
      if not x or x >= 0 then return nil, "--mask-fill: expected a negative number such as -1e4, got '" .. s .. "'" end
      return x
    end,
    run = function(e, m, v, o)
      local ok, why = need_program(e, "--mask-fill", m)
      if not ok then return nil, why end
      return each_function(e, o, function(f) return rewrite.mask_fill(f, v) end)
    end },
  { flag = "--gelu", name = "gelu", arg = "tanh", nothing = "no gelu in EXACT mode",
    parse = function(s)
      if s ~= "tanh" then return nil, "--gelu: expected 'tanh', got '" .. s .. "'" end
      return s
    end,
    run = function(e, m, v, o)
      local ok, why = need_program(e, "--gelu", m)
      if not ok then return nil, why end
      return each_function(e, o, function(f) return rewrite.gelu(f, v) end)
    end },
  { flag = "--linear-to-conv", name = "linear-to-conv", nothing = "no linear op with a const 2-D weight on a rank-2/3 input",
    run = function(e, m, _, o)
      local ok, why = need_program(e, "--linear-to-conv", m)
      if not ok then return nil, why end
      return each_function(e, o, function(f)
        local res = rewrite.linear_to_conv(f)
        if res.changed > 0 then dce.run(f) end
        return res
      end)
    end },
}

M.BY_FLAG = {}
for _, t in ipairs(M.LIST) do M.BY_FLAG[t.flag] = t end

return M
