-- mlsh.model.writer — saving models: validate, repack the weight file, write the container atomically.
--   writer.save(spec, read_blob, path, opts)   spec: a Model Message; read_blob(file, offset, value)
--     returns dtype, bytes, n for a BlobFileValue; opts.in_place allows replacing opts.source;
--     opts.uuid (a function returning UUID strings) makes the manifest reproducible.
-- The container follows the path: .mlmodel (a spec alone), .mlpackage (folder) or .mlpackage.zip /
-- .zip (a zipped package). Weight files are rebuilt from the blobs the program references, in
-- order, so unmodified models keep their layout and modified ones carry no dead weights.
local core = require "mlsh.core"
local types = require "mlsh.types"

local M = {}
local fs = core.fs

M.MANIFEST_TEMPLATE = [[{
  "fileFormatVersion": "1.0.0",
  "itemInfoEntries": {
    "%s": {
      "author": "com.apple.CoreML",
      "description": "CoreML Model Weights",
      "name": "weights",
      "path": "com.apple.CoreML/weights"
    },
    "%s": {
      "author": "com.apple.CoreML",
      "description": "CoreML Model Specification",
      "name": "model.mlmodel",
      "path": "com.apple.CoreML/model.mlmodel"
    }
  },
  "rootModelIdentifier": "%s"
}
]]

-- A version-4 UUID from /dev/urandom (the manifest keys coremltools writes are random too).
function M.uuid()
  local f = io.open("/dev/urandom", "rb")
  local b = f and f:read(16) or tostring(os.time()):rep(4):sub(1, 16)
  if f then f:close() end
  local bytes = { b:byte(1, 16) }
  bytes[7] = (bytes[7] & 0x0f) | 0x40
  bytes[9] = (bytes[9] & 0x3f) | 0x80
  local hex = {}
  for i, v in ipairs(bytes) do hex[i] = string.format("%02X", v) end
  local h = table.concat(hex)
  return string.format("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
end

-- ---- walking a program ------------------------------------------------------------------------------
-- Calls fn(value_msg, where) for every Value in a program (op attributes, input bindings, nested).
local function each_value(prog, fn)
  local function visit_value(v, where)
    fn(v, where)
    if v:has("immediateValue") then
      local iv = v.immediateValue
      local kind = iv:which("tensor")
      if kind == "tuple" or kind == "list" then
        for _, x in ipairs(iv[kind].values) do visit_value(x, where) end
      end
    end
  end
  local function visit_block(block, fname)
    for _, op in ipairs(block.operations) do
      local where = { ["function"] = fname, op = op, block = block }
      for _, e in ipairs(op.attributes) do if e.value then visit_value(e.value, where) end end
      for _, e in ipairs(op.inputs) do
        if e.value then
          for _, b in ipairs(e.value.arguments) do
            if b:which("name") == "value" then visit_value(b.value, where) end
          end
        end
      end
      for _, b in ipairs(op.blocks) do visit_block(b, fname) end
    end
  end
  for _, fe in ipairs(prog.functions) do
    for _, be in ipairs(fe.value and fe.value.block_specializations or {}) do
      if be.value then visit_block(be.value, fe.key) end
    end
  end
end
M.each_value = each_value

local function op_label(op)
  local name = ""
  for _, e in ipairs(op.attributes) do
    if e.key == "name" and e.value then
      local v = types.value(e.value)
      name = type(v) == "table" and tostring(v[1]) or tostring(v)
    end
  end
  return string.format("%s op '%s'", op.type, name)
end

-- ---- validation -------------------------------------------------------------------------------------
-- Errors name the op and the value: undefined references, ops outside the declared opset, consts
-- whose data do not match their type.
function M.validate(spec, read_blob)
  local errors = {}
  local function err(fmt, ...) errors[#errors + 1] = string.format(fmt, ...) end
  if not spec:has("mlProgram") then return errors end
  local optable = require "mlsh.optable"
  local prog = spec.mlProgram
  for _, fe in ipairs(prog.functions) do
    local fn = fe.value
    for _, be in ipairs(fn.block_specializations) do
      local opset = be.key
      local function check_block(block, defined)
        local scope = setmetatable({}, { __index = defined })
        for _, nv in ipairs(block.inputs) do scope[nv.name] = true end
        for _, op in ipairs(block.operations) do
          if not optable.exists(op.type, opset) and op.type ~= "write_state" then
            err("function %s: %s is not in opset %s", fe.key, op_label(op), opset)
          end
          for _, e in ipairs(op.inputs) do
            for _, b in ipairs(e.value and e.value.arguments or {}) do
              if b:which("name") == "name" and not scope[b.name] then
                err("function %s: %s input '%s' references undefined value '%s'", fe.key, op_label(op), e.key, b.name)
              end
            end
          end
          for _, nb in ipairs(op.blocks) do check_block(nb, scope) end
          for _, o in ipairs(op.outputs) do scope[o.name] = true end
        end
        for _, out in ipairs(block.outputs) do
          if not scope[out] then err("function %s: block output '%s' is not defined", fe.key, out) end
        end
      end
      local top = {}
      for _, nv in ipairs(fn.inputs) do top[nv.name] = true end
      check_block(be.value, top)
    end
  end
  each_value(prog, function(v, where)
    local t = types.value_type(v.type)
    local n = t.kind == "tensor" and types.count(t.shape) or nil
    if not n then return end
    local label = "function " .. where["function"] .. ": " .. op_label(where.op)
    if v:has("immediateValue") and v.immediateValue:which("tensor") == "tensor" then
      local tv = v.immediateValue.tensor
      local kind = tv:which("floats")
      if kind == "bytes" then
        local want = require("mlsh.model.weights").nbytes(t.dtype, n)
        local got = #tv.bytes.values
        if want and t.dtype ~= "string" and got ~= want then
          err("%s: value of %s%s holds %d bytes, its type needs %d", label, t.dtype, types.type_string(t):sub(#t.dtype + 1), got, want)
        end
      elseif kind then
        local got = tv[kind]:count("values")
        if got ~= n and not (n == 1 and got == 1) then
          err("%s: value of type %s holds %d elements, its shape needs %d", label, types.type_string(t), got, n)
        end
      end
    elseif v:has("blobFileValue") and read_blob then
      local ok, dtype, bytes = pcall(read_blob, v.blobFileValue.fileName, v.blobFileValue.offset, v)
      if not ok or not dtype then
        err("%s: blob %s@%d cannot be read: %s", label, v.blobFileValue.fileName, v.blobFileValue.offset, tostring(ok and bytes or dtype))
      else
        local want = require("mlsh.model.weights").nbytes(t.dtype, n)
        if dtype ~= t.dtype then err("%s: blob holds %s data, the value is typed %s", label, dtype, t.dtype)
        elseif want and #bytes ~= want then err("%s: blob holds %d bytes, type %s needs %d", label, #bytes, types.type_string(t), want) end
      end
    end
  end)
  return errors
end

-- ---- writing ----------------------------------------------------------------------------------------
local function kind_of(path)
  if path:match("%.mlpackage%.zip$") or path:match("%.zip$") then return "zip" end
  if path:match("%.mlpackage/?$") then return "mlpackage" end
  if path:match("%.mlmodel$") then return "mlmodel" end
  return nil
end
M.kind_of = kind_of

local function same_path(a, b)
  -- as `realpath -m`: a path that does not exist yet resolves through its folder
  local function real(p)
    local r = core.fs.realpath(p)
    if r then return r end
    local dir, base = p:match("^(.*)/([^/]*)$")
    local rd = core.fs.realpath(dir and (dir == "" and "/" or dir) or ".")
    return rd and (rd:gsub("/$", "") .. "/" .. (base or p)) or p
  end
  return a and b and real(a) == real(b)
end

-- The distinct blob references of a program, in the order of their old (file, offset): each
-- {file, offset, value, users = {BlobFileValue...}} (a blob referenced twice is stored once).
local function blob_refs(prog)
  local refs, by_key = {}, {}
  each_value(prog, function(v)
    if not v:has("blobFileValue") then return end
    local bf = v.blobFileValue
    local key = bf.fileName .. "@" .. bf.offset
    if not by_key[key] then
      by_key[key] = { file = bf.fileName, offset = bf.offset, value = v, users = {} }
      refs[#refs + 1] = by_key[key]
    end
    table.insert(by_key[key].users, bf)
  end)
  table.sort(refs, function(a, b)
    if a.file ~= b.file then return a.file < b.file end
    return a.offset < b.offset
  end)
  return refs
end

-- Add every blob of refs to blob writer w and point their users at the new offsets.
local function add_blobs(w, refs, read_blob)
  for _, r in ipairs(refs) do
    local ok, dtype, bytes, n = pcall(read_blob, r.file, r.offset, r.value)
    if not ok or not dtype then error(tostring(ok and bytes or dtype), 0) end
    local new = w:add(dtype, bytes, n)
    for _, bf in ipairs(r.users) do
      bf.fileName = "@model_path/weights/weight.bin"
      bf.offset = new
    end
  end
end

-- Copy spec and rebuild its weight file. Blobs are appended in the order of their old offsets, so
-- an unmodified model keeps its exact layout; a blob referenced twice is stored once. Returns the
-- new spec and the weight file's bytes (nil without blobs); with weight_path, the weight file is
-- streamed to that path blob by blob instead (never held in memory) and the second result is
-- true when it was written.
function M.repack(spec, read_blob, weight_path)
  local out = spec:copy()
  if not out:has("mlProgram") then return out, nil end
  local refs = blob_refs(out.mlProgram)
  if #refs == 0 then return out, nil end
  if not weight_path then
    local w = core.blobfile.writer()
    add_blobs(w, refs, read_blob)
    return out, w:bytes()
  end
  local w = core.blobfile.stream(weight_path)
  local ok, err = pcall(add_blobs, w, refs, read_blob)
  if not ok then
    pcall(w.close, w)
    error(err, 0)
  end
  w:close()
  return out, true
end

local function must(ok, err) if not ok then error(err, 0) end end

-- Write a package folder: the weight file streamed from the spec's blobs, then the spec with the
-- new offsets and the manifest. Returns nothing; raises "path: reason".
local function write_package_dir(dir, spec, read_blob, uuid)
  must(fs.mkdir_p(dir .. "/Data/com.apple.CoreML/weights"))
  local wpath = dir .. "/Data/com.apple.CoreML/weights/weight.bin"
  local out = M.repack(spec, read_blob, wpath)
  uuid = uuid or M.uuid
  local w, r = uuid(), uuid()
  must(fs.write_atomic(dir .. "/Manifest.json", string.format(M.MANIFEST_TEMPLATE, w, r, r)))
  must(fs.write_atomic(dir .. "/Data/com.apple.CoreML/model.mlmodel", out:encode()))
end

local function tmp_sibling(path)
  return string.format("%s.tmp-%d-%d", path:gsub("/$", ""), os.time(), math.random(1, 1 << 30))
end

-- Save; returns true or raises "path: reason".
function M.save(spec, read_blob, path, opts)
  opts = opts or {}
  local kind = kind_of(path)
  if not kind then error(path .. ": cannot tell the format from the name (use .mlmodel, .mlpackage or .mlpackage.zip)", 0) end
  if opts.source and same_path(opts.source, path) and not opts.in_place then
    error(path .. ": refusing to replace the input (use --in-place)", 0)
  end
  local problems = M.validate(spec, read_blob)
  if #problems > 0 then error(path .. ": invalid model: " .. problems[1] .. (#problems > 1 and string.format(" (and %d more)", #problems - 1) or ""), 0) end
  if kind == "mlmodel" then
    local out, weights = M.repack(spec, read_blob)
    if weights then error(path .. ": this model keeps weights in a weight file; save it as .mlpackage", 0) end
    local ok, e = fs.write_atomic(path, out:encode())
    if not ok then error(e, 0) end
  elseif kind == "mlpackage" then
    local dst = path:gsub("/$", "")
    local tmp = tmp_sibling(dst)
    local ok, e = pcall(write_package_dir, tmp, spec, read_blob, opts.uuid)
    if ok then ok, e = fs.replace_dir(tmp, dst) end
    if not ok then
      fs.remove_tree(tmp)
      -- name the package the user asked for, not the temporary folder it was being built in
      e = tostring(e)
      local i, j = e:find(tmp, 1, true)
      if i then e = e:sub(1, i - 1) .. dst .. e:sub(j + 1) end
      error(e, 0)
    end
  else
    local tmp = tmp_sibling(path)
    local name = path:match("([^/]+)$"):gsub("%.zip$", "")
    if not name:match("%.mlpackage$") then name = name .. ".mlpackage" end
    local ok, e = pcall(write_package_dir, tmp .. "/" .. name, spec, read_blob, opts.uuid)
    if ok then ok, e = fs.zip_dir(tmp .. "/" .. name, name, path) end
    fs.remove_tree(tmp)
    if not ok then error(tostring(e), 0) end
  end
  return true
end

-- A read_blob for a loaded model: its own weight files.
function M.model_reader(m)
  return function(file, offset, value)
    local meta, err = m:_blob(file, offset)
    if not meta then error(err, 0) end
    local t = value and types.value_type(value.type)
    local n = t and types.count(t.shape)
    if not n then
      local bits = require("mlsh.model.weights").nbytes(meta.dtype, 8)
      n = bits and (meta.size * 8 // bits - meta.padding_bits // math.max(1, bits // 8)) or meta.size
    end
    local bytes = assert(m:_blob_bytes(file, offset))
    local want = require("mlsh.model.weights").nbytes(meta.dtype, n)
    if want and want < #bytes then bytes = bytes:sub(1, want) end
    return meta.dtype, bytes, n
  end
end

-- m:save(path [, {in_place = true}]) (the method lives in mlsh.model.coreml)
function M.save_model(m, path, opts)
  opts = opts or {}
  -- A compiled NeuralNetwork (model.espresso.*) has only a partial spec rebuilt from Espresso's
  -- files (mlsh.espresso): written out, it would be a model without its layer parameters or weights.
  local esp = m.format == "mlmodelc" and m:_cache().espresso
  if esp then
    error(string.format("%s: a compiled NeuralNetwork (model.espresso.*) cannot be saved: its spec is a partial "
      .. "reconstruction (lost: %s); save the original .mlmodel instead", m.path, esp.lost[1] or "?"), 0)
  end
  opts.source = m.path
  return M.save(m.spec, M.model_reader(m), path, opts)
end

return M
