-- mlsh extract X.pte -o DIR — write every Core ML payload of an ExecuTorch program as the folder
-- tree it was flattened from: DIR/<method>_<delegate index>/<root>/… (a payload shared through
-- named data is written once, under the first method that uses it). Names are checked by the C
-- reader (no "..", no '/', no links); each file is written atomically. Any other input is handed
-- to the subgraph extractor (mlsh.cmd.extract_graph). Exit: 0 written, 1 unreadable input, 2 usage.
local pte = require "mlsh.pte"
local fs = require("mlsh.core").fs

local C = {
  summary = "write the Core ML models inside an ExecuTorch .pte to a folder (-o DIR)",
  usage = "mlsh extract X.pte -o DIR   (other models: mlsh extract MODEL --from X --to Y -o OUT)",
}

local function fail(code, msg)
  io.stderr:write("mlsh extract: ", msg, "\n")
  return code
end

-- A method name as one safe folder-name component.
local function safe_component(s)
  s = s:gsub("[^%w%._%-]", "_")
  if s == "" or s:match("^%.+$") then s = "_" .. s end
  return s
end
C.safe_component = safe_component

local function parse(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-o" or a == "--output" then
      o.out = args[i + 1]
      if not o.out then return nil, a .. " needs a folder" end
      i = i + 1
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a:sub(1, 1) == "-" then return nil, "unknown option " .. a
    elseif o.path then return nil, "one program at a time"
    else o.path = a end
    i = i + 1
  end
  return o
end

local function write_tree(d, dest)
  local tree, err = d:tree()
  if not tree then return nil, err end
  local root = dest .. "/" .. safe_component(tree.root)
  local ok, merr = fs.mkdir_p(root)
  if not ok then return nil, merr end
  local files = 0
  for _, n in ipairs(tree.nodes) do
    local path = root .. "/" .. n.path
    if n.dir then
      ok, merr = fs.mkdir_p(path)
      if not ok then return nil, merr end
    else
      local parent = path:match("^(.*)/[^/]*$")
      ok, merr = fs.mkdir_p(parent)
      if not ok then return nil, merr end
      local bytes, ferr = d:file(n.path)
      if not bytes then return nil, ferr end
      ok, merr = fs.write_atomic(path, bytes)
      if not ok then return nil, merr end
      files = files + 1
    end
  end
  return root, files
end

-- Extract every Core ML payload of the program at path into out; returns a list of
-- {method, index, dir, files, shared_with} or nil, err.
function C.extract(path, out)
  local p, err = pte.open(path)
  if not p then return nil, err end
  local done, by_key = {}, {}
  for _, d in ipairs(p:coreml_delegates()) do
    local name = safe_component(d.method) .. "_" .. d.index
    if d.named_key and by_key[d.named_key] then
      done[#done + 1] = { method = d.method, index = d.index, dir = by_key[d.named_key], shared = true }
    else
      local dir, files = write_tree(d, out .. "/" .. name)
      if not dir then p:close() return nil, files end
      if d.named_key then by_key[d.named_key] = dir end
      done[#done + 1] = { method = d.method, index = d.index, dir = dir, files = files }
    end
  end
  p:close()
  return done
end

function C.run(args)
  local first
  for _, a in ipairs(args) do
    if a:sub(1, 1) ~= "-" then first = a break end
  end
  if first and not pte.sniff(first) then
    local ok, graph = pcall(require, "mlsh.cmd.extract_graph")
    if not ok then
      return fail(2, first .. ": not an ExecuTorch program, and this mlsh has no subgraph extractor (mlsh.cmd.extract_graph)")
    end
    return graph.run(args)
  end
  local o, err = parse(args)
  if not o then return fail(2, err .. "\nusage: " .. C.usage) end
  if o.help then print("usage: " .. C.usage) return 0 end
  if not o.path or not o.out then return fail(2, "need a program and -o DIR\nusage: " .. C.usage) end
  local done, xerr = C.extract(o.path, o.out)
  if not done then io.stderr:write("mlsh: ", xerr, "\n") return 1 end
  if #done == 0 then
    print(o.path .. ": the program has no Core ML delegate")
    return 0
  end
  for _, r in ipairs(done) do
    if r.shared then print(string.format("%s delegate %d: same payload as %s", r.method, r.index, r.dir))
    else print(string.format("%s delegate %d: %d files in %s", r.method, r.index, r.files, r.dir)) end
  end
  return 0
end

return C
