-- mlsh.builder.program_write — turning a built program into a Core ML spec and a weight file:
-- the specification version it needs (Program:spec_version()), Program:build() -> spec, read_blob
-- and Program:save(path [, opts]), installed on mlsh.builder.program's Program by install(Program).
local core = require "mlsh.core"
local mil = require "mlsh.builder.mil"
local features = require "mlsh.builder.features"
local optable = require "mlsh.optable"

local M = {}
local P = core.proto
local fail, guard = features.fail, features.guard
local WEIGHT_FILE = "@model_path/weights/weight.bin"

-- The spec version the content needs, and why: n, {{id, min_spec, text, where}, ...}.
local function needed_spec(self)
  do
    local led = features.ledger()
    led:feature("ml_program")
    local opset_feature = ({ [7] = "coreml6_opset", [8] = "coreml7_opset", [9] = "coreml8_opset" })[self.opset_spec]
    if opset_feature then led:feature(opset_feature, "opset " .. self.opset)
    elseif self.opset_spec > 9 then led:add("opset", self.opset_spec, "ML program opset " .. self.opset_tag, "opset " .. self.opset) end
    if #self.functions > 1 then led:feature("multiple_functions", #self.functions .. " functions") end
    local introduced = {}
    for _, f in ipairs(self.functions) do
      local enumerated = 0
      if #f.inputs == 0 then led:feature("empty_inputs", "function " .. f.name) end
      for _, i in ipairs(f.inputs) do
        local where = "input " .. i.name
        if i.kind == "state" then led:feature("states", "state " .. i.name)
        elseif i.kind == "image" then
          if i.color == "GRAYSCALE_FLOAT16" then led:feature("grayscale_float16_image", where) end
        else
          if i.dtype == "fp16" then led:feature("fp16_multiarray", where) end
          if i.dtype == "int8" then led:feature("int8_multiarray", where) end
          if i.flex and i.flex.kind == "enumerated" then enumerated = enumerated + 1 end
        end
      end
      if enumerated > 1 then led:feature("multiple_enumerated_inputs", "function " .. f.name) end
      for _, out in ipairs(f.outputs) do
        if out.dtype == "fp16" then led:feature("fp16_multiarray", "output " .. out.name) end
        if out.dtype == "int8" then led:feature("int8_multiarray", "output " .. out.name) end
      end
      for _, op in ipairs(f.ops) do
        local e = introduced[op.type]
        if e == nil then
          e = optable.get(op.type) or false
          introduced[op.type] = e
        end
        if e and e.introduced_spec > 6 then
          led:add("op_" .. op.type, e.introduced_spec, "MIL op " .. op.type .. " (introduced " .. e.introduced .. ")", "op " .. op.name)
        end
      end
    end
    return features.choose_spec(self.requested_spec, led)
  end
end


local Methods = {}

function Methods:spec_version() return guard("program", needed_spec, self) end
-- ---- serialization --------------------------------------------------------------------------------------
local function function_features(f)
  local ins, states = {}, {}
  for _, i in ipairs(f.inputs) do
    if i.kind == "state" then states[#states + 1] = i else ins[#ins + 1] = i end
  end
  local outs = {}
  for _, o in ipairs(f.outputs) do
    local shape = o.value.shape
    local known = mil.count(shape) ~= nil
    outs[#outs + 1] = { name = o.name, kind = "array", dtype = o.dtype, shape = known and shape or nil, description = o.description }
  end
  return ins, outs, states
end

local function write_function(self, f, fn_msg, spec_version, blobs)
  for _, i in ipairs(f.inputs) do
    local nv = fn_msg:add("inputs")
    nv.name = i.name
    if i.kind == "state" then mil.state_type(nv:mutable("type"), i.dtype, i.shape)
    else mil.tensor_type(nv:mutable("type"), i.dtype, i.value.shape) end
  end
  fn_msg.opset = self.opset_tag
  local be = fn_msg:add("block_specializations")
  be.key = self.opset_tag
  local block = be:mutable("value")
  local outs = {}
  for i, o in ipairs(f.outputs) do outs[i] = o.value.name end
  block.outputs = outs
  for _, op in ipairs(f.ops) do
    local o = block:add("operations")
    o.type = op.type
    for _, inp in ipairs(op.inputs) do
      local e = o:add("inputs")
      e.key = inp.param
      local arg = e:mutable("value")
      for _, v in ipairs(inp.values) do arg:add("arguments").name = v.name end
    end
    for _, v in ipairs(op.outputs) do
      local nv = o:add("outputs")
      nv.name = v.name
      mil.tensor_type(nv:mutable("type"), v.dtype, v.shape)
    end
    local a = o:add("attributes")
    a.key = "name"
    mil.string_value(a:mutable("value"), op.name)
    if op.const then
      local c = op.const
      local val = o:add("attributes")
      val.key = "val"
      local n = #c.shape == 0 and 1 or (mil.count(c.shape) or 0)
      if mil.use_weight_file(c.dtype, n, spec_version) then
        local offset = 64 * (#blobs.list + 1) -- a key for read_blob; writer.save assigns real offsets
        local bytes = mil.encode(c.data, c.dtype)
        local have = type(c.data) == "userdata" and #c.data or #mil.as_list(c.data)
        blobs.list[#blobs.list + 1] = offset
        blobs[offset] = { dtype = c.dtype, bytes = bytes, n = have }
        mil.blob(val:mutable("value"), c.dtype, c.shape, WEIGHT_FILE, offset)
      else
        mil.immediate(val:mutable("value"), c.dtype, c.shape, c.data)
      end
    end
  end
end

-- -> Model Message, read_blob(file, offset) for writer.save, spec reasons
function Methods:build()
  return guard("", function()
    if #self.functions == 0 then fail("the program has no functions (add one with p:func(\"main\"))") end
    local default = self.default or self.functions[1].name
    if not self.by_name[default] then fail("default function '%s' does not exist", default) end
    if #self.functions == 1 and default ~= "main" then
      fail("a single-function program must call its function 'main' (Core ML looks for it), not '%s'", default)
    end
    for _, f in ipairs(self.functions) do
      if #f.outputs == 0 then fail("function '%s' has no outputs (declare them with f:output)", f.name) end
    end
    local spec_version, reasons = needed_spec(self)
    local m = P.new("CoreML.Specification.Model")
    m.specificationVersion = spec_version
    local d = m:mutable("description")
    if #self.functions == 1 then
      local ins, outs, states = function_features(self.functions[1])
      for _, i in ipairs(ins) do features.describe(d, "input", i) end
      for _, o in ipairs(outs) do features.describe(d, "output", o) end
      for _, s in ipairs(states) do features.describe(d, "state", s) end
    else
      for _, f in ipairs(self.functions) do
        local fd = d:add("functions")
        fd.name = f.name
        local ins, outs, states = function_features(f)
        for _, i in ipairs(ins) do features.describe(fd, "input", i) end
        for _, o in ipairs(outs) do features.describe(fd, "output", o) end
        for _, s in ipairs(states) do features.describe(fd, "state", s) end
      end
      d.defaultFunctionName = default
    end
    features.metadata(d, self.metadata)
    local prog = m:mutable("mlProgram")
    prog.version = 1
    local blobs = { list = {} }
    for _, f in ipairs(self.functions) do
      local fe = prog:add("functions")
      fe.key = f.name
      write_function(self, f, fe:mutable("value"), spec_version, blobs)
    end
    local attr = prog:add("attributes")
    attr.key = "buildInfo"
    mil.build_info(attr:mutable("value"), { { "mlsh-version", require("mlsh").version }, { "mlsh-builder", "mlsh.builder" } })
    local function read_blob(_, offset)
      local b = blobs[offset]
      if not b then error("no blob at " .. tostring(offset), 0) end
      return b.dtype, b.bytes, b.n
    end
    return m, read_blob, reasons
  end)
end

-- p:save(path) -> path; errors raise "path: reason".
function Methods:save(path, opts)
  local ok, m, read_blob = pcall(self.build, self)
  if not ok then error(tostring(path) .. ": " .. tostring(m):gsub("^[^:]+:%d+: ", ""), 0) end
  return features.save(m, read_blob, path, opts)
end


function M.install(Program)
  for k, f in pairs(Methods) do Program[k] = f end
end

return M
