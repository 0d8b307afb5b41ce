-- mlsh.onnx.ops_file — op tables for `mlsh ep --table-only --ops-file FILE`.
-- Two forms:
--   markdown, as ONNX Runtime ships them (coreml_supported_*_ops.md): rows `|domain:op|note|`,
--     read exactly as the usability checker reads them (a line starting with '|' that splits into
--     exactly four pieces on '|', whose first cell holds a ':'); other lines are prose and ignored;
--   plain: one `domain:op` per line; blank lines and lines starting with '#' are ignored, anything
--     else is an error naming the line.
-- Entries are matched exactly against "domain:op" with domain "ai.onnx" for the default domain,
-- so the tables' own typos (ai.onnx:Argmax, ai.onnx.ReduceSum) count as ONNX Runtime counts them.
local M = {}

local function split_pipes(line)
  local pieces, start = {}, 1
  while true do
    local i = line:find("|", start, true)
    if not i then pieces[#pieces + 1] = line:sub(start) break end
    pieces[#pieces + 1] = line:sub(start, i - 1)
    start = i + 1
  end
  return pieces
end

-- Parse table text -> {ops = {["domain:op"] = note}, order = {...}} | nil, err
function M.parse(text, name)
  name = name or "ops file"
  local ops, order = {}, {}
  local markdown = false
  for line in text:gmatch("[^\n]*") do
    if line:match("^|") then markdown = true break end
  end
  local lineno = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    line = line:gsub("\r$", "")
    if markdown then
      if line:sub(1, 1) == "|" then
        local pieces = split_pipes(line:match("^%s*(.-)%s*$"))
        if #pieces == 4 and pieces[2]:find(":", 1, true) then
          if not ops[pieces[2]] then order[#order + 1] = pieces[2] end
          ops[pieces[2]] = pieces[3]:gsub("<br/>", " ")
        end
      end
    else
      local s = line:match("^%s*(.-)%s*$")
      if s ~= "" and s:sub(1, 1) ~= "#" then
        if not s:match("^[%w%._-]*:[%w_]+$") then
          return nil, string.format("%s:%d: not a domain:op line: %s", name, lineno, s)
        end
        if not ops[s] then order[#order + 1] = s end
        ops[s] = ""
      end
    end
  end
  if #order == 0 then return nil, name
    .. ": no domain:op entries (expected |domain:op|note| rows or domain:op lines)" end
  return { ops = ops, order = order, name = name }
end

function M.load(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return M.parse(text, path)
end

function M.key(node)
  return (node.domain ~= "" and node.domain or "ai.onnx") .. ":" .. node.op
end

-- The tables mlsh uses when no --ops-file is given: the ops ONNX Runtime's CoreML EP registers
-- for each model format in its release documentation (ort-coreml-ep.md §4), correctly spelled.
local COMMON = { "Add", "ArgMax", "AveragePool", "Cast", "Clip", "Concat", "Conv", "DepthToSpace", "Div", "Gemm",
  "GlobalAveragePool", "GlobalMaxPool", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Pow", "PRelu", "Reciprocal",
  "ReduceSum", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze",
  "Sub", "Tanh", "Transpose" }
local ONLY = {
  neuralnetwork = { "BatchNormalization", "Flatten", "Gather", "LRN", "Pad" },
  mlprogram = { "ConvTranspose", "Erf", "Gelu", "GridSample", "GroupNormalization", "InstanceNormalization",
    "LayerNormalization", "Max", "ReduceMax", "ReduceMean", "Round", "Unsqueeze" },
}
function M.builtin(format)
  local t = { ops = {}, order = {}, name = "mlsh built-in " .. format .. " table" }
  for _, list in ipairs({ COMMON, ONLY[format] or {} }) do
    for _, op in ipairs(list) do
      local k = "ai.onnx:" .. op
      t.ops[k] = ""
      t.order[#t.order + 1] = k
    end
  end
  table.sort(t.order)
  return t
end

return M
