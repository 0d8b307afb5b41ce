-- mlsh.compress.spec_edit — editing a compressed program's spec: the block of a function, renaming
-- value references, and the blob sequence the writer reads (old blobs in program order, new ones
-- from the compression sink, at the NEW_FILE pseudo-file).
local writer = require "mlsh.model.writer"

local M = {}

M.SEQ_FILE = "@mlsh/compress/weights"
M.NEW_FILE = "@mlsh/compress/new"
local NEW_FILE = M.NEW_FILE

-- Rename references to `renames[old] = new` in op inputs and block outputs.
local function rename_refs(block, renames)
  local outs, changed = block.outputs, false
  for i, o in ipairs(outs) do
    if renames[o] then outs[i], changed = renames[o], true end
  end
  if changed then block.outputs = outs end
  for _, op in ipairs(block.operations) do
    for _, e in ipairs(op.inputs) do
      for _, b in ipairs(e.value and e.value.arguments or {}) do
        if b:which("name") == "name" and renames[b.name] then b.name = renames[b.name] end
      end
    end
    for _, nb in ipairs(op.blocks) do rename_refs(nb, renames) end
  end
end

-- The function's block message in a spec copy (the one its opset names, else the first).
local function block_of(fe)
  local fn = fe.value
  local chosen
  for _, be in ipairs(fn.block_specializations) do
    if be.key == fn.opset then chosen = be end
  end
  return chosen or fn.block_specializations[1]
end

-- Re-point every blob of the program to SEQ_FILE in program order; returns read_blob. `source`
-- reads the blobs already there: a model, or a read_blob function (e.g. a builder's).
local function sequence_blobs(spec, source, new_blobs)
  local model_read = type(source) == "function" and source or (source and writer.model_reader(source))
  local seq, by_key = {}, {}
  if spec:has("mlProgram") then
    writer.each_value(spec.mlProgram, function(v)
      if not v:has("blobFileValue") then return end
      local bf = v.blobFileValue
      local key = bf.fileName .. "@" .. bf.offset
      local k = by_key[key]
      if not k then
        k = #seq + 1
        seq[k] = { file = bf.fileName, offset = bf.offset, value = v:copy() }
        by_key[key] = k
      end
      bf.fileName, bf.offset = M.SEQ_FILE, k
    end)
  end
  return function(file, offset, value)
    if file ~= M.SEQ_FILE then
      if not model_read then error("no blob " .. file .. "@" .. offset, 0) end
      return model_read(file, offset, value)
    end
    local e = seq[offset]
    if not e then error("no blob at " .. tostring(offset), 0) end
    if e.file == NEW_FILE then
      local b = new_blobs[e.offset]
      return b.dtype, b.bytes, b.n
    end
    if not model_read then error("no blob " .. e.file .. "@" .. e.offset, 0) end
    return model_read(e.file, e.offset, e.value)
  end
end

M.rename_refs, M.block_of, M.sequence_blobs = rename_refs, block_of, sequence_blobs
return M
