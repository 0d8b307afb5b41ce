-- mlsh.compress.config — compression settings: validation, config files, and which setting applies
-- to which weight (coremltools' OptimizationConfig: op_name > op_type > global; `false` disables).
--
-- A setting says what to do with one weight; a policy holds the global setting and the overrides:
--   setting = { palettize = {nbits, mode, granularity, group_size, per_channel_scale},
--               quantize  = {dtype, symmetric, granularity, block_size},
--               prune     = {sparsity | n_m = {n, m} | mode = "threshold", threshold, block_size, dim},
--               weight_threshold = 2048 }
--   (prune with palettize or quantize is joint compression: iOS18 only)
--   policy  = setting fields (the global setting) plus
--             op_type = { linear = setting | false, ... }, op_name = { [const name] = setting | false }
-- An override replaces the global setting for its weights (as coremltools' per-op configs do);
-- missing fields take the defaults below. Errors are raised as "compress: ..." strings.
local M = {}

M.DEFAULTS = {
  palettize = { mode = "kmeans", nbits = 4, granularity = "per_tensor", group_size = 32, per_channel_scale = false },
  quantize = { dtype = "int8", symmetric = true, granularity = "per_channel", block_size = 32 },
  prune = { mode = "magnitude", threshold = 1e-12 },
  weight_threshold = 2048,
}

M.NBITS = { [1] = true, [2] = true, [3] = true, [4] = true, [6] = true, [8] = true }
M.PAL_MODES = { kmeans = true, uniform = true, unique = true }
M.PAL_GRAN = { per_tensor = true, per_grouped_channel = true }
M.Q_DTYPES = { int8 = true, uint8 = true, int4 = true, uint4 = true }
M.Q_GRAN = { per_tensor = true, per_channel = true, per_block = true }

local function err(fmt, ...) error("compress: " .. string.format(fmt, ...), 0) end

local function check_keys(t, allowed, what)
  for k in pairs(t) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      err("unknown %s option '%s' (expected %s)", what, tostring(k), table.concat(names, ", "))
    end
  end
end

local function int(v) return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v)) end

-- Canonical names: "per-tensor" and "per_tensor" are the same.
local function canon(s) return type(s) == "string" and (s:gsub("-", "_"):lower()) or s end

local function palettize(p)
  check_keys(p, { nbits = true, mode = true, granularity = true, group_size = true, per_channel_scale = true },
    "palettize")
  local d = M.DEFAULTS.palettize
  local out = { mode = canon(p.mode) or d.mode, granularity = canon(p.granularity) or d.granularity,
                per_channel_scale = p.per_channel_scale or false }
  if not M.PAL_MODES[out.mode] then err("palettize mode must be kmeans, uniform or unique (got %s)", tostring(p.mode)) end
  if out.mode == "unique" then
    if p.nbits ~= nil then err("palettize mode unique picks nbits itself; do not give nbits") end
  else
    out.nbits = p.nbits or d.nbits
    if not int(out.nbits) or not M.NBITS[math.tointeger(out.nbits) or -1] then
      err("palettize nbits must be one of 1, 2, 3, 4, 6, 8 (got %s)", tostring(p.nbits))
    end
    out.nbits = math.tointeger(out.nbits)
  end
  if not M.PAL_GRAN[out.granularity] then
    err("palettize granularity must be per-tensor or per-grouped-channel (got %s)", tostring(p.granularity))
  end
  if out.granularity == "per_grouped_channel" then
    out.group_size = p.group_size or d.group_size
    if not int(out.group_size) or out.group_size < 1 then err("group size must be a positive integer (got %s)", tostring(p.group_size)) end
    out.group_size = math.tointeger(out.group_size)
  elseif p.group_size ~= nil then
    err("a group size needs granularity per-grouped-channel")
  end
  if type(out.per_channel_scale) ~= "boolean" then err("per_channel_scale must be true or false") end
  return out
end

local function quantize(q)
  check_keys(q, { dtype = true, symmetric = true, granularity = true, block_size = true }, "quantize")
  local d = M.DEFAULTS.quantize
  local out = { dtype = canon(q.dtype) or d.dtype, granularity = canon(q.granularity) or d.granularity }
  if q.symmetric == nil then out.symmetric = d.symmetric else out.symmetric = q.symmetric end
  if not M.Q_DTYPES[out.dtype] then err("quantize dtype must be int8, uint8, int4 or uint4 (got %s)", tostring(q.dtype)) end
  if type(out.symmetric) ~= "boolean" then err("symmetric must be true or false") end
  if not M.Q_GRAN[out.granularity] then
    err("quantize granularity must be per-tensor, per-channel or per-block (got %s)", tostring(q.granularity))
  end
  if out.granularity == "per_block" then
    out.block_size = q.block_size or d.block_size
    if not int(out.block_size) or out.block_size < 1 then err("block size must be a positive integer (got %s)", tostring(q.block_size)) end
    out.block_size = math.tointeger(out.block_size)
  elseif q.block_size ~= nil then
    err("a block size needs granularity per-block")
  end
  return out
end

local function prune(p)
  check_keys(p, { sparsity = true, n_m = true, mode = true, threshold = true, block_size = true, dim = true }, "prune")
  local out = { mode = canon(p.mode) or "magnitude" }
  if out.mode == "threshold" then
    if p.sparsity or p.n_m or p.block_size or p.dim then err("threshold pruning takes only a threshold") end
    out.threshold = p.threshold or M.DEFAULTS.prune.threshold
    if type(out.threshold) ~= "number" then err("prune threshold must be a number") end
    return out
  end
  if out.mode ~= "magnitude" then err("prune mode must be magnitude or threshold (got %s)", tostring(p.mode)) end
  if p.threshold then err("a prune threshold needs mode threshold") end
  if (p.sparsity == nil) == (p.n_m == nil) then err("magnitude pruning takes exactly one of a sparsity and n:m") end
  if p.sparsity ~= nil then
    if type(p.sparsity) ~= "number" or not (p.sparsity >= 0 and p.sparsity <= 1) then
      err("sparsity must be a number in [0, 1] (got %s)", tostring(p.sparsity))
    end
    out.sparsity = p.sparsity
  else
    local nm = p.n_m
    if type(nm) == "string" then
      local n, m = nm:match("^(%d+):(%d+)$")
      nm = n and { tonumber(n), tonumber(m) } or nil
    end
    if type(nm) ~= "table" or not int(nm[1]) or not int(nm[2]) or nm[1] < 0 or nm[2] < 1 or nm[1] > nm[2] then
      err("n:m must be two integers with 0 <= n <= m, m >= 1 (got %s)", tostring(type(p.n_m) == "table" and table.concat(p.n_m, ":") or p.n_m))
    end
    out.n_m = { math.tointeger(nm[1]), math.tointeger(nm[2]) }
  end
  if p.block_size ~= nil then
    if out.n_m then err("a prune block size cannot be combined with n:m") end
    if not int(p.block_size) or p.block_size < 2 then err("prune block size must be an integer > 1 (got %s)", tostring(p.block_size)) end
    out.block_size = math.tointeger(p.block_size)
  end
  if p.dim ~= nil then
    if not (p.dim == 0 or p.dim == 1) then err("prune dim must be 0 or 1 (got %s)", tostring(p.dim)) end
    if not (out.block_size or out.n_m) then err("prune dim needs a block size or n:m") end
    out.dim = math.tointeger(p.dim)
  end
  return out
end

-- A validated copy of one setting (nil / false stay as they are: "leave uncompressed").
function M.setting(s, where)
  if s == false or s == nil then return s end
  if type(s) ~= "table" then err("%s must be a table or false", where or "a setting") end
  check_keys(s, { palettize = true, quantize = true, prune = true, weight_threshold = true }, where or "setting")
  local out = {}
  if s.palettize then out.palettize = palettize(s.palettize == true and {} or s.palettize) end
  if s.quantize then out.quantize = quantize(s.quantize == true and {} or s.quantize) end
  if s.prune then out.prune = prune(s.prune) end
  if out.palettize and out.quantize then
    err("palettize and quantize together (palettize -> quantize joint compression) is not supported; pick one")
  end
  if not (out.palettize or out.quantize or out.prune) then
    err("%s names no compression (palettize, quantize or prune)", where or "the setting")
  end
  local wt = s.weight_threshold
  if wt ~= nil and (not int(wt) or wt < 0) then err("weight threshold must be a non-negative integer (got %s)", tostring(wt)) end
  out.weight_threshold = wt and math.tointeger(wt) or nil
  return out
end

-- A validated policy. Global fields may be absent when every weight is covered by overrides.
function M.policy(p)
  if type(p) ~= "table" then err("the policy must be a table") end
  check_keys(p, { palettize = true, quantize = true, prune = true, weight_threshold = true, op_type = true,
                  op_name = true }, "policy")
  local out = { op_type = {}, op_name = {} }
  if p.palettize or p.quantize or p.prune then
    out.global = M.setting({ palettize = p.palettize, quantize = p.quantize, prune = p.prune }, "the global setting")
  end
  local wt = p.weight_threshold
  if wt ~= nil and (not int(wt) or wt < 0) then err("weight threshold must be a non-negative integer (got %s)", tostring(wt)) end
  out.weight_threshold = wt and math.tointeger(wt) or M.DEFAULTS.weight_threshold
  for _, kind in ipairs({ "op_type", "op_name" }) do
    local t = p[kind] or {}
    if type(t) ~= "table" then err("%s must be a table", kind) end
    for k, v in pairs(t) do
      if type(k) ~= "string" then err("%s keys must be strings", kind) end
      if kind == "op_type" and k == "const" then err("op_type 'const' is not allowed (name the consumers' op types)") end
      out[kind][k] = M.setting(v, string.format("%s[%q]", kind, k))
    end
  end
  if not out.global and next(out.op_type) == nil and next(out.op_name) == nil then
    err("nothing to do: give --palettize, --quantize or --prune (or a --config file)")
  end
  return out
end

-- The setting for one inventory entry: op_name (const op name or output name) > op_type (every
-- consumer type; they must agree) > global. Returns setting | false, source | nil, error.
function M.resolve(policy, e, consumer_types)
  for _, key in ipairs({ e.op, e.name }) do
    local s = key and policy.op_name[key]
    if s ~= nil then return s, "op_name" end
  end
  -- each consumer type picks its op_type setting or the global one; they must agree
  local found, from
  for _, t in ipairs(consumer_types or {}) do
    local s = policy.op_type[t]
    if s == nil then s = policy.global or false end
    if from and s ~= found then
      return nil, nil, string.format("its consumers (%s and %s) have different settings", from, t)
    end
    found, from = s, t
  end
  if found == nil then found = policy.global or false end
  return found, (from and policy.op_type[from] ~= nil) and "op_type" or "global"
end

-- Load a config file: a Lua chunk returning a policy table, run without access to globals.
function M.load_file(path)
  local f, e = io.open(path, "r")
  if not f then err("cannot read config %s: %s", path, tostring(e)) end
  local src = f:read("a")
  f:close()
  local env = { math = math, string = string, table = table, ipairs = ipairs, pairs = pairs, tostring = tostring,
                tonumber = tonumber }
  local chunk, cerr = load(src, "@" .. path, "t", env)
  if not chunk then err("config %s: %s", path, tostring(cerr)) end
  local ok, res = pcall(chunk)
  if not ok then err("config %s: %s", path, tostring(res)) end
  if type(res) ~= "table" then err("config %s must return a table (got %s)", path, type(res)) end
  return res
end

return M
