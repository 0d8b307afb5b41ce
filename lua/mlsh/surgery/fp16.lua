-- mlsh.surgery.fp16 — an fp32 ML program function computes in fp16, as coremltools'
-- FP16ComputePrecision pass leaves it once its cast pairs are cancelled:
--   * every op that is not kept computes in fp16 (its fp32 outputs become fp16; `cast` to fp32
--     becomes cast to fp16);
--   * fp32 consts used only by such ops become fp16 consts (the weight halves);
--   * fp32 model inputs keep their type and get one cast to fp16 (`<input>_to_fp16`) before first use;
--     fp32 model outputs keep their type: the value is computed as `<output>_cast_fp16` and cast back;
--   * kept ops (o.keep: op types or names, `*` wildcards; plus lstm/gru/rnn below iOS17, whose older
--     versions have no fp16 form) stay fp32 with casts around them.
--   fp16.run(f, o) -> {changed = n} | nil, reason
local types = require "mlsh.types"
local core = require "mlsh.core"

local M = {}
M.FP16_MAX = 65504

local FLOAT = { fp16 = true, fp32 = true }
local OLD_RECURRENT = { lstm = true, gru = true, rnn = true }

local function glob(p) return "^" .. p:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$" end

function M.selector(list)
  local pats = {}
  for _, s in ipairs(list or {}) do
    for item in s:gmatch("[^,%s]+") do pats[#pats + 1] = glob(item) end
  end
  return function(op)
    for _, p in ipairs(pats) do
      if op.type:match(p) or op.name:match(p) then return true end
    end
    return false
  end
end

local function is_const(op) return op.type == "const" or op.type:match("^constexpr_") ~= nil end

local function has_nested(f)
  for _, op in ipairs(f:ops()) do if #op.blocks > 0 then return op end end
  return nil
end

-- The dtype each op computes in after the pass: "fp16", or "fp32" for kept ops.
local function plan(f, keep)
  local spec = require "mlsh.spec"
  local opset_spec = spec.opset_spec(f.fn.opset) or 6
  local kept, compute = {}, {}
  for _, op in ipairs(f:ops()) do
    local float_cast = false
    if op.type == "cast" then
      local t = f:type_of(f.arg_name(op, "x") or "")
      float_cast = t ~= nil and FLOAT[t.dtype] == true -- boundary/precision casts stay as they are
    end
    if not is_const(op) and not float_cast then
      local fp32 = false
      for _, v in ipairs(op.outputs) do if v.dtype == "fp32" then fp32 = true end end
      for _, p in ipairs(op.inputs) do
        for _, a in ipairs(p.args) do
          local t = a.name and f:type_of(a.name)
          if t and t.dtype == "fp32" and op.type ~= "cast" then fp32 = true end
        end
      end
      if fp32 then
        if keep(op) or (OLD_RECURRENT[op.type] and opset_spec < 8) then kept[op] = true
        else compute[op] = true end
      end
    end
  end
  return kept, compute
end

local function cast_op(f, src, dtype, name, where, opname)
  local t = f:type_of(src)
  return f:insert({ type = "cast", name = opname or name, inputs = { x = src, dtype = dtype },
                    outputs = { { name = name, dtype = dtype, shape = t.shape } } }, where)
end

-- 1. ops compute in fp16 (a cast to fp32 becomes a cast to fp16)
local function retype_ops(f, compute)
  local n = 0
  for _, op in ipairs(f:ops()) do
    if compute[op] then
      for _, v in ipairs(op.outputs) do
        if v.dtype == "fp32" then v.dtype = "fp16" end
      end
      if op.type == "cast" and op.outputs[1].dtype == "fp16" then
        local d = f:const_data(f.arg_name(op, "dtype") or "")
        if d and d.data[1] == "fp32" then
          local c = f:const(op.name .. "_dtype_fp16", { "fp16" }, { dtype = "string", shape = {}, before = op })
          f.arg(op, "dtype")[1].name = c
        end
      end
      f.editor:log("fp16", f.name, op, "computes in fp16")
      n = n + 1
    end
  end
  f:touch()
  return n
end

-- The fp32 consts that become fp16: every use is by an op computing in fp16.
local function convertible(f, compute)
  local list = {}
  for _, op in ipairs(f:ops()) do
    if op.type == "const" and op.outputs[1].dtype == "fp32" then
      local uses = f:uses(op.outputs[1].name)
      local all = #uses > 0
      for _, u in ipairs(uses) do
        if not (u.op and compute[u.op] and u.op.type ~= "cast") then all = false end
      end
      if all then list[#list + 1] = op end
    end
  end
  return list
end

-- A finite value beyond the fp16 range would become inf: refuse, as coremltools does for weights.
local function overflow(f, consts)
  for _, op in ipairs(consts) do
    local c = f:const_data(op.outputs[1].name)
    local a = type(c.data) == "table" and core.array.new(c.data) or c.data
    for i = 1, #a do
      local x = a[i]
      if x == x and x ~= math.huge and x ~= -math.huge and math.abs(x) > M.FP16_MAX then
        return string.format("function %s: const '%s' holds %g, beyond the fp16 range (+-65504)%s", f.name, op.name, x,
          x < 0 and "; a mask fill? run --mask-fill -1e4 before --fp16" or "; keep its users fp32 with --keep-fp32")
      end
    end
  end
  return nil
end

-- 2. fp32 consts used only by fp16 ops become fp16
local function retype_consts(f, consts)
  local n = 0
  for _, op in ipairs(consts) do
    local c = f:const_data(op.outputs[1].name)
    for _, a in ipairs(op.attrs) do
      if a.key == "val" then a.value = f:make_value("fp16", c.shape, c.data) end
    end
    op.outputs[1].dtype = "fp16"
    f.editor:log("fp16", f.name, op, string.format("weight fp32 -> fp16 (%d -> %d bytes)", 4 * c.count, 2 * c.count))
    n = n + 1
  end
  f:touch()
  return n
end

-- 3. casts where a value's dtype is not what its consumer computes in (one per value and dtype)
local function insert_casts(f, compute, kept)
  local casts, n, ops = {}, 0, {}
  for i, op in ipairs(f:ops()) do ops[i] = op end
  for _, op in ipairs(ops) do
    if (compute[op] or kept[op]) and op.type ~= "cast" then
      local want = compute[op] and "fp16" or "fp32"
      for _, p in ipairs(op.inputs) do
        for _, a in ipairs(p.args) do
          local t = a.name and f:type_of(a.name)
          if t and FLOAT[t.dtype] and t.dtype ~= want then
            local key = a.name .. "\0" .. want
            if not casts[key] then
              local name = f:fresh(a.name .. "_to_" .. want)
              cast_op(f, a.name, want, name, { before = op })
              casts[key] = name
              f.editor:log("fp16", f.name, { name = name, type = "cast" }, string.format("cast %s %s -> %s inserted", a.name, t.dtype, want))
              n = n + 1
            end
            a.name = casts[key]
          end
        end
      end
    end
  end
  f:touch()
  return n
end

-- 4. model outputs keep their declared dtype: computed as <name>_cast_fp16, cast back under the name
local function keep_outputs(f)
  local n = 0
  for _, name in ipairs(f:outputs()) do
    local t = f:type_of(name)
    local fd = f.editor:feature(f.name, "output", name)
    local was = fd and types.feature(fd).dtype
    if t and t.dtype == "fp16" and was == "fp32" then
      local inner = f:fresh(name .. "_cast_fp16")
      for _, u in ipairs(f:uses(name)) do
        if u.op then f.arg(u.op, u.param)[u.index].name = inner end
      end
      t.name = inner
      f:touch()
      cast_op(f, inner, "fp32", name, nil, f:fresh(name .. "_to_fp32"))
      f.editor:log("fp16", f.name, { name = name, type = "cast" }, string.format("output %s cast back to fp32", name))
      n = n + 1
    end
  end
  f:touch()
  return n
end

function M.run(f, o)
  o = o or {}
  local nested = has_nested(f)
  if nested then return nil, string.format("function %s: %s '%s' has nested blocks (control flow); --fp16 does not rewrite them",
    f.name, nested.type, nested.name) end
  local kept, compute = plan(f, M.selector(o.keep))
  if next(compute) == nil then return { changed = 0 } end
  local consts = convertible(f, compute)
  local why = overflow(f, consts)
  if why then return nil, why end
  local n = retype_ops(f, compute) + retype_consts(f, consts)
  n = n + insert_casts(f, compute, kept) + keep_outputs(f)
  return { changed = n }
end

return M
