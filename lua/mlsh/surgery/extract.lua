-- mlsh.surgery.extract — sub-graphs as models of their own: extract, split (coremltools'
-- bisect_model semantics), chunks balanced by weight bytes.
--   extract.part(src_editor, fname, from, to) -> editor of a model whose function fname computes the
--     values `to` from the values `from` (plus any model input they still need); consts (weights)
--     go with the part that uses them; other functions are kept untouched.
--   extract.cuts(src_editor, fname, {at = "op"} | {chunks = n}) -> list of cut positions (op indices)
--   extract.split(src_editor, fname, cuts) -> list of part editors, chained: part k's outputs are named
--     as part k+1 (or any later part) reads them; original model outputs come out of the part computing them.
-- Boundary values must be tensors of a model I/O dtype (fp32, fp16, int32) with static shapes. An
-- fp16 boundary travels as fp32 (cast out and back in, which is exact), as bisect_model does.
local surgery = require "mlsh.surgery"
local types = require "mlsh.types"
local ir_copy = require("mlsh.surgery.ir").copy_shape

local M = {}

local function const_like(op) return op.type == "const" or op.type:match("^constexpr_") ~= nil end

-- Names used by op, nested blocks included, minus those the nested blocks define.
local function free_uses(op)
  local used, defined = {}, {}
  local function walk(o)
    for _, p in ipairs(o.inputs) do
      for _, a in ipairs(p.args) do if a.name then used[#used + 1] = a.name end end
    end
    for _, b in ipairs(o.blocks) do
      for _, v in ipairs(b.inputs) do defined[v.name] = true end
      for _, x in ipairs(b.ops) do
        walk(x)
        for _, v in ipairs(x.outputs) do defined[v.name] = true end
      end
      for _, n in ipairs(b.outputs) do used[#used + 1] = n end
    end
  end
  walk(op)
  local out = {}
  for _, n in ipairs(used) do if not defined[n] then out[#out + 1] = n end end
  return out
end
M.free_uses = free_uses

local FEATURE_OK = { fp32 = true, fp16 = true, int32 = true }
local SIDE_EFFECTS = { write_state = true }

local function check_boundary(f, name)
  local t = f:type_of(name)
  if not t then return nil, string.format("function %s has no value '%s'", f.name, name) end
  if t.kind ~= "tensor" or not FEATURE_OK[t.dtype] then
    return nil, string.format("value '%s' is %s: a model input/output must be fp32, fp16 or int32", name, types.type_string(t))
  end
  for _, d in ipairs(t.shape) do
    if d < 0 then return nil, string.format("value '%s' has an unknown dimension (%s); fix the input shapes first (mlsh fix --fix-shape)", name, types.type_string(t)) end
  end
  return t
end

local function original_feature(e, fname, name)
  return e:feature(fname, "input", name) or e:feature(fname, "state", name), e:feature(fname, "state", name) and "state" or "input"
end

-- The ops `to` needs, walking back to `from` values and model inputs.
local function closure(f, from, to, roots)
  local is_from = {}
  for _, n in ipairs(from) do is_from[n] = true end
  local orig_inputs = {}
  for _, v in ipairs(f:inputs()) do orig_inputs[v.name] = v end
  local r = { need = {}, from = {}, inputs = {}, orig_inputs = orig_inputs }
  local stack, seen = {}, {}
  for _, k in ipairs(roots or {}) do -- side effects (state writes) of the part
    local op = f:ops()[k]
    r.need[op] = true
    for _, u in ipairs(free_uses(op)) do stack[#stack + 1] = u end
  end
  for _, n in ipairs(to) do
    if not f:type_of(n) then return nil, string.format("function %s has no value '%s'", f.name, n) end
    stack[#stack + 1] = n
  end
  while #stack > 0 do
    local n = table.remove(stack)
    if not seen[n] then
      seen[n] = true
      if is_from[n] then r.from[n] = true
      elseif orig_inputs[n] then r.inputs[n] = true
      else
        local p = f:producer(n)
        if not p or not f:index_of(p) then return nil, string.format("value '%s' is defined inside a nested block; cut outside control flow", n) end
        if not r.need[p] then
          r.need[p] = true
          for _, u in ipairs(free_uses(p)) do stack[#stack + 1] = u end
        end
      end
    end
  end
  return r
end

-- Every use of `old` (op arguments, block outputs) reads `new` instead.
local function redirect(f, old, new)
  for _, op in ipairs(f:ops()) do
    for _, prm in ipairs(op.inputs) do
      for _, a in ipairs(prm.args) do if a.name == old then a.name = new end end
    end
  end
  for i, n in ipairs(f.fn.block.outputs) do if n == old then f.fn.block.outputs[i] = new end end
  f:touch()
end

-- A cut value becomes a model input; below spec 7 an fp16 one is read as fp32 and cast.
local function add_cut_input(e, f, v, narrow)
  if narrow and v.dtype == "fp16" then
    local inner = f:fresh(v.name .. "_to_fp16")
    table.insert(f.fn.inputs, { name = v.name, dtype = "fp32", shape = v.shape, kind = "tensor" })
    redirect(f, v.name, inner)
    f:insert({ type = "cast", name = inner, inputs = { x = v.name, dtype = "fp16" } }, { before = f:ops()[1] })
    e:describe(f.name, "input", { name = v.name, dtype = "fp32", shape = v.shape })
  else
    table.insert(f.fn.inputs, v)
    e:describe(f.name, "input", v)
  end
  f:touch()
end

-- Value n becomes a model output (described anew unless it was one: then its description is kept).
local function add_output(e, f, n, old_fd, narrow)
  local d = e:description_for(f.name)
  local t, why = check_boundary(f, n)
  if not t and not old_fd then return nil, why end
  local out = n
  if not f:producer(n) then -- an input passed straight through
    out = f:fresh(n .. "_out")
    f:insert({ type = "identity", name = out, inputs = { x = n } })
  end
  local dtype = t and t.dtype
  if narrow and dtype == "fp16" and not old_fd then
    local inner = f:fresh(n .. "_fp16")
    for _, v in ipairs(f:producer(n).outputs) do if v.name == n then v.name = inner end end
    redirect(f, n, inner)
    f:insert({ type = "cast", name = f:fresh(n .. "_to_fp32"), inputs = { x = inner, dtype = "fp32" },
               outputs = { { name = n, dtype = "fp32", shape = t.shape } } })
    dtype = "fp32"
  end
  table.insert(f.fn.block.outputs, out)
  if old_fd and out == n then d:add("output", old_fd)
  else e:describe(f.name, "output", { name = out, dtype = dtype, shape = t.shape }) end
  f:touch()
  return true
end

-- An editor over src's model restricted to the values `to` computed from `from`.
-- o.roots: indices of top-level ops to keep whatever their outputs (state writes).
function M.part(src, fname, from, to, o)
  local e = surgery.from_spec(src.src, src.read_blob, { source = src.source })
  local f = e:func(fname)
  fname = f.name
  local r, err = closure(f, from, to, o and o.roots)
  if not r then return nil, err end
  local new_inputs, ins = {}, {}
  for _, v in ipairs(f.fn.inputs) do if r.inputs[v.name] or r.from[v.name] then ins[#ins + 1] = v end end
  for _, n in ipairs(from) do
    if r.from[n] and not r.orig_inputs[n] then
      local t, why = check_boundary(f, n)
      if not t then return nil, why end
      new_inputs[#new_inputs + 1] = { name = n, dtype = t.dtype, shape = ir_copy(t.shape), kind = "tensor" }
    end
  end
  local keep = {}
  for _, op in ipairs(f:ops()) do if r.need[op] then keep[#keep + 1] = op end end
  f.fn.block.ops = keep
  -- descriptions: the model inputs still read keep theirs, cut values get new ones
  local d = e:description_for(fname)
  local old_fds = {}
  for _, field in ipairs({ "input", "state", "output" }) do
    old_fds[field] = {}
    for _, fd in ipairs(d[field]) do old_fds[field][fd.name] = fd:copy() end
    d:clear(field)
  end
  f.fn.inputs = ins
  for _, v in ipairs(ins) do
    if old_fds.input[v.name] then d:add("input", old_fds.input[v.name]) else d:add("state", old_fds.state[v.name]) end
  end
  f:touch()
  -- as bisect_model does, fp16 values cross a cut as fp32 (exact both ways; fp16 model I/O also
  -- needs spec 7); o.keep_fp16 passes them as they are
  local narrow = not (o and o.keep_fp16) or (e.spec_version or 0) < 7
  for _, v in ipairs(new_inputs) do add_cut_input(e, f, v, narrow) end
  f.fn.block.outputs = {}
  for _, n in ipairs(to) do
    local ok, why = add_output(e, f, n, old_fds.output[n], narrow)
    if not ok then return nil, why end
  end
  return e, { inputs = new_inputs, ops = #keep }
end

-- Weight bytes each top-level op brings (consts counted at their first non-const user).
local function weight_profile(f)
  local counted, bytes = {}, {}
  local sizes = { fp32 = 4, fp16 = 2, int32 = 4, int8 = 1, uint8 = 1, int16 = 2, uint16 = 2, fp64 = 8 }
  for i, op in ipairs(f:ops()) do
    bytes[i] = 0
    if not const_like(op) then
      for _, n in ipairs(free_uses(op)) do
        local p = f:producer(n)
        if p and const_like(p) and not counted[n] then
          counted[n] = true
          local t = p.outputs[1]
          bytes[i] = bytes[i] + (types.count(t.shape) or 0) * (sizes[t.dtype] or 0)
        end
      end
    end
  end
  return bytes
end
M.weight_profile = weight_profile

-- Cut positions: after op index k (1-based, top-level block).
function M.cuts(e, fname, o)
  local f = e:func(fname)
  local ops = f:ops()
  if o.at then
    local op = f:find(o.at)
    if not op then return nil, string.format("function %s has no op or value named '%s'", f.name, o.at) end
    local k = f:index_of(op)
    if not k then return nil, string.format("op '%s' is inside a nested block; cut outside control flow", o.at) end
    local last = 0
    for i, x in ipairs(ops) do if not const_like(x) then last = i end end
    if k >= last then return nil, string.format("op '%s' is the last op: nothing would be left for the second part", o.at) end
    return { k }
  end
  local n = o.chunks
  local bytes = weight_profile(f)
  local total = 0
  for _, b in ipairs(bytes) do total = total + b end
  local compute = {}
  for i, x in ipairs(ops) do if not const_like(x) then compute[#compute + 1] = i end end
  if #compute < n then return nil, string.format("function %s has %d ops that compute; cannot make %d chunks", f.name, #compute, n) end
  -- like bisect_model: once the share is reached, cut after the first op with one output used once
  -- (a narrow boundary); never so late that the remaining parts would be empty
  local cuts, acc, k = {}, 0, 1
  for idx, i in ipairs(compute) do
    acc = acc + bytes[i]
    local left = #compute - idx -- compute ops after this one
    local need_more = n - 1 - #cuts
    local op = ops[i]
    local narrow = #op.outputs == 1 and #f:uses(op.outputs[1].name) == 1
    if need_more > 0 and left >= need_more and ((acc >= total * k / n and narrow) or left == need_more) then
      cuts[#cuts + 1] = i
      k = k + 1
    end
  end
  return cuts, total
end

-- Parts for the cuts; each part's from/to so that every value crossing a cut is passed on.
function M.plan(e, fname, cuts)
  local f = e:func(fname)
  local ops = f:ops()
  local part_of = {}
  local bounds = { 0 }
  for _, c in ipairs(cuts) do bounds[#bounds + 1] = c end
  bounds[#bounds + 1] = #ops
  for p = 1, #bounds - 1 do
    for i = bounds[p] + 1, bounds[p + 1] do part_of[ops[i]] = p end
  end
  local n = #bounds - 1
  local from, to, roots = {}, {}, {}
  for p = 1, n do
    from[p], to[p], roots[p] = {}, {}, {}
    for i = bounds[p] + 1, bounds[p + 1] do
      if SIDE_EFFECTS[ops[i].type] then table.insert(roots[p], i) end
    end
  end
  local function add(list, v)
    for _, x in ipairs(list) do if x == v then return end end
    list[#list + 1] = v
  end
  for _, op in ipairs(ops) do
    if not const_like(op) then
      for _, u in ipairs(free_uses(op)) do
        local prod = f:producer(u)
        if prod and not const_like(prod) and part_of[prod] ~= part_of[op] then
          add(to[part_of[prod]], u)
          add(from[part_of[op]], u)
        end
      end
    end
  end
  for _, out in ipairs(f:outputs()) do
    local prod = f:producer(out)
    local p = prod and part_of[prod] or 1
    add(to[p], out)
  end
  return from, to, roots
end

function M.split(e, fname, cuts)
  local from, to, roots = M.plan(e, fname, cuts)
  local parts = {}
  for p = 1, #from do
    local part, info = M.part(e, fname, from[p], to[p], { roots = roots[p] })
    if not part then return nil, info end
    parts[p] = { editor = part, from = from[p], to = to[p], info = info }
  end
  return parts
end

M.original_feature = original_feature
return M
