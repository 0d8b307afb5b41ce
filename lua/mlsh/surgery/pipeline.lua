-- mlsh.surgery.pipeline — one pipeline package from ML program parts (mlsh split --pipeline).
--   pipeline.save(parts, src_editor, fname, path) -> true | raises "path: reason"
-- The pipeline's inputs/outputs are the original function's; its models are the parts in order,
-- named part1, part2, ... Every part's weights go into the package's one weights/weight.bin (a blob
-- used by several parts is stored once), each part referring to @model_path/weights/weight.bin as a
-- single-model package does. The package is built in a temporary sibling and renamed into place.
local core = require "mlsh.core"
local writer = require "mlsh.model.writer"

local M = {}
local P, fs = core.proto, core.fs
local WEIGHTS = "@model_path/weights/weight.bin"

local function repack(spec, readers)
  local w = core.blobfile.writer()
  local any, seen = false, {}
  for i, sub in ipairs(spec.pipeline.models) do
    if sub:has("mlProgram") then
      local read = readers[i]
      local groups, order = {}, {}
      writer.each_value(sub.mlProgram, function(v)
        if v:has("blobFileValue") then
          local bf = v.blobFileValue
          local key = bf.fileName .. "@" .. bf.offset
          if not groups[key] then groups[key] = { value = v, users = {} } order[#order + 1] = key end
          table.insert(groups[key].users, bf)
        end
      end)
      for _, key in ipairs(order) do
        local g = groups[key]
        local bf = g.users[1]
        local dtype, bytes, n = read.fn(bf.fileName, bf.offset, g.value)
        local global = (bf.fileName == read.new_file and ("part" .. i) or "src") .. "\0" .. key
        if not seen[global] then seen[global] = w:add(dtype, bytes, n) end
        for _, u in ipairs(g.users) do u.fileName, u.offset = WEIGHTS, seen[global] end
        any = true
      end
    end
  end
  return any and w:bytes() or nil
end

local function must(ok, err) if not ok then error(err, 0) end end

function M.save(parts, src, fname, path, o)
  o = o or {}
  if not path:match("%.mlpackage/?$") then error(path .. ": a pipeline is written as a .mlpackage", 0) end
  if o.source and not o.in_place then
    local a = path:gsub("/$", "")
    local b = o.source:gsub("/$", "")
    if a == b then error(path .. ": refusing to replace the input (use --in-place)", 0) end
  end
  local spec = P.new("CoreML.Specification.Model")
  local d = spec:mutable("description")
  local orig = src:description_for(fname)
  for _, field in ipairs({ "input", "output" }) do
    for _, fd in ipairs(orig[field]) do d:add(field, fd) end
  end
  local sd = src.spec.description
  if sd and sd:has("metadata") then d.metadata = sd.metadata end
  local version = 0
  local pipe = spec:mutable("pipeline")
  local readers, names = {}, {}
  for i, part in ipairs(parts) do
    local problems = part.editor:validate()
    if #problems > 0 then error(path .. ": part " .. i .. " would be invalid: " .. problems[1], 0) end
    local sub = part.editor:build()
    for _, p in ipairs(writer.validate(sub, part.editor.read_blob)) do error(path .. ": part " .. i .. ": " .. p, 0) end
    version = math.max(version, sub.specificationVersion)
    pipe:add("models", sub)
    -- parts of one source share its weight file: the same blob is stored once
    readers[i] = { fn = part.editor.read_blob, new_file = require("mlsh.surgery").BLOB_FILE }
    names[i] = "part" .. i
  end
  pipe.names = names
  spec.specificationVersion = version
  local weights = repack(spec, readers)
  local dst = path:gsub("/$", "")
  local tmp = string.format("%s.tmp-%d-%d", dst, os.time(), math.random(1, 1 << 30))
  local ok, e = pcall(function()
    must(fs.mkdir_p(tmp .. "/Data/com.apple.CoreML/weights"))
    local w, r = writer.uuid(), writer.uuid()
    must(fs.write_atomic(tmp .. "/Manifest.json", string.format(writer.MANIFEST_TEMPLATE, w, r, r)))
    must(fs.write_atomic(tmp .. "/Data/com.apple.CoreML/model.mlmodel", spec:encode()))
    if weights then must(fs.write_atomic(tmp .. "/Data/com.apple.CoreML/weights/weight.bin", weights)) end
    must(fs.replace_dir(tmp, dst))
  end)
  if not ok then
    fs.remove_tree(tmp)
    error(tostring(e), 0)
  end
  return true
end

return M
