-- mlsh.builder.random — seeded, platform-independent weight generators for the builder.
--   random.normal{seed = 1, shape = {32, 3, 3, 3}, mean = 0, std = 1}     -> mlsh.Array shaped `shape`
--   random.uniform{seed = 1, shape = {...}, low = -1, high = 1}
--   random.zeros(shape), random.ones(shape), random.full(shape, v), random.array(values, shape)
--   random.derive(seed, tag) -> a new integer seed (so blocks can give each weight its own stream)
-- The generator is splitmix64 in plain Lua integer arithmetic rather than math.random: the same
-- seed must give the same bytes on every machine and Lua build, and math.random's state is shared
-- with the rest of the process (the writer draws temporary names from it).
local core = require "mlsh.core"

local M = {}

local GOLDEN = 0x9E3779B97F4A7C15
local TWO_POW_53 = 2.0 ^ -53

local function shape_count(shape, who)
  if type(shape) ~= "table" then error(who .. ": shape must be a list of dimensions", 3) end
  local n = 1
  for i, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d < 0 then
      error(string.format("%s: dimension %d of the shape is %s; dimensions are integers >= 0", who, i, tostring(d)), 3)
    end
    n = n * d
  end
  return n
end

-- An Array of n elements filled by next_value(i), shaped like `shape`.
local function filled(shape, n, next_value)
  local a = core.array.new(n)
  for i = 1, n do a[i] = next_value(i) end
  if #shape >= 1 and #shape <= 8 then a:reshape(shape) end
  return a
end

-- FNV-1a over a string, folded into a 64-bit integer: turns names into seeds.
local function fnv1a(s, h)
  h = h or -3750763034362895579 -- 0xcbf29ce484222325 as a signed Lua integer
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 0x100000001B3
  end
  return h
end
M.fnv1a = fnv1a

local function seed_of(seed, who)
  if seed == nil then error(who .. ": a seed is required (generated weights must be reproducible)", 3) end
  if math.type(seed) == "integer" then return seed end
  if type(seed) == "string" then return fnv1a(seed) end
  error(who .. ": seed must be an integer or a string", 3)
end

-- A stream of uniform doubles in [0, 1).
local function stream(seed)
  local state = seed
  return function()
    state = state + GOLDEN
    local z = state
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return (z >> 11) * TWO_POW_53
  end
end
M.stream = stream

function M.derive(seed, tag)
  return fnv1a(tostring(tag), seed_of(seed, "random.derive"))
end

function M.normal(o)
  o = o or {}
  local n = shape_count(o.shape, "random.normal")
  local mean, std = o.mean or 0, o.std or 1
  local u = stream(seed_of(o.seed, "random.normal"))
  local spare
  -- Box-Muller, both values of each pair used: cheap and exactly reproducible.
  return filled(o.shape, n, function()
    if spare then
      local s = spare
      spare = nil
      return mean + std * s
    end
    local u1, u2 = 1.0 - u(), u()
    local r = math.sqrt(-2.0 * math.log(u1))
    spare = r * math.sin(2.0 * math.pi * u2)
    return mean + std * r * math.cos(2.0 * math.pi * u2)
  end)
end

function M.uniform(o)
  o = o or {}
  local n = shape_count(o.shape, "random.uniform")
  local low, high = o.low or -1, o.high or 1
  local u = stream(seed_of(o.seed, "random.uniform"))
  return filled(o.shape, n, function() return low + (high - low) * u() end)
end

function M.full(shape, v)
  local n = shape_count(shape, "random.full")
  return filled(shape, n, function() return v end)
end

function M.zeros(shape) return M.full(shape, 0) end
function M.ones(shape) return M.full(shape, 1) end

-- Values from a Lua list, shaped (the shape defaults to {#values}).
function M.array(values, shape)
  shape = shape or { #values }
  local n = shape_count(shape, "random.array")
  if n ~= #values then
    error(string.format("random.array: %d values do not fill shape [%s] (%d elements)", #values, table.concat(shape, ","), n), 2)
  end
  return filled(shape, n, function(i) return values[i] end)
end

return M
