-- mlsh.pte — ExecuTorch programs (.pte, .bpte) and the Core ML models delegated inside them.
--   local pte = require "mlsh.pte"
--   local p = assert(pte.open("model.pte"))      -- nil, "path: reason" on bad input
--   p:methods()     -> {{name, inputs, outputs, operators, instructions, delegates}}
--   p:delegates()   -> {Delegate...}: d.method, d.index (0-based, as stored), d.backend, d.location
--                      ("inline" | "segment" | "named_data"), d.size, d.compile_specs {key = text},
--                      d.named_key, d.is_coreml; d:model() -> a normal Model opened in place
--   p:info() / p:summary() / p:close()
-- The C core (core/pte.c, core/inmemoryfs.c) does the bounds-checked reading; this module shapes it.
local core = require "mlsh.core"
local json = require "mlsh.json"
local spec = require "mlsh.spec"

local M = {}
M.COREML = "CoreMLBackend"

local Program, Delegate = {}, {}
Program.__index, Delegate.__index = Program, Delegate

local EVALUE = { [0] = "unknown", "Null", "Int", "Bool", "Double", "Tensor", "String", "IntList", "DoubleList", "BoolList",
                 "TensorList", "OptionalTensorList" }
M.EVALUE = EVALUE

-- "pte" | "bpte" | nil, from the first 8 bytes
function M.sniff(path) return core.pte.sniff(path) end

function M.open(path)
  local h, err = core.pte.open(path)
  if not h then return nil, err end
  local info = h:info()
  local p = setmetatable({ _h = h, _info = info, path = path, format = "pte", bundled = info.bundled, _models = {} }, Program)
  return p
end

function Program:close()
  for _, m in pairs(self._models) do m:close() end
  self._models = {}
  self._h:close()
end

-- Hand a model out of the cache so close() leaves it open (its bytes stay mapped by the C side).
function Program:detach(m)
  for k, v in pairs(self._models) do if v == m then self._models[k] = nil end end
end

function Program:methods() return self._info.methods end

local function specs_map(list)
  local out = {}
  for _, s in ipairs(list) do out[s.key] = s.value end
  return out
end

function Program:delegates()
  if self._delegates then return self._delegates end
  local out = {}
  for mi, m in ipairs(self._info.methods) do
    for di, d in ipairs(m.delegates) do
      out[#out + 1] = setmetatable({
        program = self, method = m.name, method_index = mi, index = di - 1, backend = d.id, location = d.location,
        size = d.size, offset = d.offset, compile_specs = specs_map(d.compile_specs), named_key = d.named_key,
        ["function"] = d["function"], is_coreml = d.id == M.COREML, _mi = mi, _di = di,
      }, Delegate)
    end
  end
  self._delegates = out
  return out
end

-- The Core ML delegates only, in order.
function Program:coreml_delegates()
  local out = {}
  for _, d in ipairs(self:delegates()) do if d.is_coreml then out[#out + 1] = d end end
  return out
end

-- The Core ML payload as a Model, read in place (mlpackage or mlmodelc inside). Cached per delegate.
function Delegate:model()
  if not self.is_coreml then return nil, string.format("%s: delegate %d of %s is %s, not Core ML", self.program.path,
    self.index, self.method, self.backend) end
  local key = self._mi .. "/" .. self._di
  local cache = self.program._models
  if cache[key] then return cache[key] end
  local m, err = self.program._h:model(self._mi, self._di)
  if not m then return nil, err end
  m, err = require("mlsh.model").adopt(m)
  if not m then return nil, err end
  cache[key] = m
  return m
end

-- The payload's file tree: {root = name, nodes = {{path, dir, size, offset}}} | nil, err
function Delegate:tree() return self.program._h:tree(self._mi, self._di) end
function Delegate:file(path) return self.program._h:file(self._mi, self._di, path) end
function Delegate:bytes() return self.program._h:payload(self._mi, self._di) end

-- ---- info ------------------------------------------------------------------------------------------
-- What the file itself says about the ExecuTorch version that wrote it (docs/containers.md).
function Program:version_markers()
  local i, out = self._info, {}
  if i.header_len == 0 then out[#out + 1] = "no extended header (no segments)"
  elseif i.header_len == 24 then out[#out + 1] = "24-byte extended header (ExecuTorch before 1.0)"
  else out[#out + 1] = i.header_len .. "-byte extended header (ExecuTorch 1.0 or later)" end
  if #i.named_data > 0 then out[#out + 1] = "named data (ExecuTorch 0.6 or later)" end
  for _, d in ipairs(self:delegates()) do
    if d.named_key and d.is_coreml then out[#out + 1] = "CMJR shared Core ML payloads (ExecuTorch 1.2 or later)" break end
  end
  if self.bundled then out[#out + 1] = "bundled program (BP08)" end
  return out
end

-- min_deployment_target is a spec version: show the OS too.
function M.spec_text(key, value)
  if key == "min_deployment_target" then
    local n = math.tointeger(tonumber(value))
    if n then
      local ok, name = pcall(spec.target_name, n)
      return string.format("%s (%s)", value, ok and name or "unknown spec")
    end
    return value == "" and '"" (default)' or value
  end
  return value
end

local function specs_json(d)
  local o = json.object({})
  for k, v in pairs(d.compile_specs) do o[k] = v end
  return o
end

function Program:info()
  local methods = json.array({})
  for _, m in ipairs(self._info.methods) do methods[#methods + 1] = { name = m.name, delegates = json.array({}) } end
  for _, d in ipairs(self:delegates()) do
    local e = { index = d.index, backend = d.backend, location = d.location, compile_specs = specs_json(d) }
    if d.is_coreml then
      local m, err = d:model()
      if not m then error(err, 0) end
      e.model = m:info()
    else
      e.size = d.size
    end
    local list = methods[d.method_index].delegates
    list[#list + 1] = e
  end
  return { format = "pte", methods = methods }
end

local function ops_text(m)
  local names = {}
  for i, o in ipairs(m.operators) do names[i] = o.overload ~= "" and (o.name .. "." .. o.overload) or o.name end
  return table.concat(names, ", ")
end

function Program:summary()
  local i, lines = self._info, {}
  local function add(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
  add("%s (pte)", self.path)
  add("  ExecuTorch program: %s", table.concat(self:version_markers(), "; "))
  add("  %d segments, %d named data entries, %d bytes", #i.segments, #i.named_data, i.file_size)
  local dels = self:delegates()
  for mi, m in ipairs(i.methods) do
    local ins, outs = {}, {}
    for k, v in ipairs(m.inputs) do ins[k] = string.format("%d:%s", v, EVALUE[m.input_types[k]] or "?") end
    for k, v in ipairs(m.outputs) do outs[k] = string.format("%d:%s", v, EVALUE[m.output_types[k]] or "?") end
    add("  method %s: inputs [%s], outputs [%s], %d operators%s, %d delegates", m.name, table.concat(ins, ", "),
      table.concat(outs, ", "), #m.operators, #m.operators > 0 and (" (" .. ops_text(m) .. ")") or "", #m.delegates)
    for _, d in ipairs(dels) do
      if d.method_index == mi then
        add("    delegate %d: %s, %s, %s%s", d.index, d.backend, d.location, require("mlsh.info").human_bytes(d.size),
          d.named_key and (" (named data " .. d.named_key .. (d["function"] and (", function " .. d["function"]) or "") .. ")") or "")
        local keys = {}
        for k in pairs(d.compile_specs) do keys[#keys + 1] = k end
        table.sort(keys)
        for _, k in ipairs(keys) do add("      %s = %s", k, M.spec_text(k, d.compile_specs[k])) end
        if d.is_coreml then
          local md, err = d:model()
          if not md then error(err, 0) end
          add("      payload %s (%s):", md.path, md.format)
          lines[#lines + 1] = (md:summary():gsub("^[^\n]*\n", ""):gsub("([^\n]+)", "      %1"))
        end
      end
    end
  end
  return table.concat(lines, "\n")
end

-- Select the model of delegate N (0-based index among the Core ML delegates of the file, or
-- "method:N"): for commands that take --delegate. Returns Model | nil, err.
function Program:select(sel)
  local list = self:coreml_delegates()
  if #list == 0 then return nil, self.path .. ": no Core ML delegate in this program" end
  if sel == nil then
    if #list > 1 then
      return nil, string.format("%s: %d Core ML delegates; choose one with --delegate N (0..%d) or METHOD:N", self.path, #list, #list - 1)
    end
    return list[1]:model()
  end
  local meth, n = tostring(sel):match("^(.-):(%d+)$")
  if meth then
    for _, d in ipairs(list) do
      if d.method == meth and d.index == tonumber(n) then return d:model() end
    end
    return nil, string.format("%s: no Core ML delegate %s in method %s", self.path, n, meth)
  end
  local k = math.tointeger(tonumber(sel))
  if not k or k < 0 or k >= #list then
    return nil, string.format("%s: --delegate %s out of range (%d Core ML delegates: 0..%d)", self.path, tostring(sel), #list, #list - 1)
  end
  return list[k + 1]:model()
end

return M
