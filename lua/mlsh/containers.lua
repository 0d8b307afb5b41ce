-- mlsh.containers — the one entry point mlsh.try_load asks first: is this path a container of
-- another tool that carries Core ML models? ExecuTorch programs (.pte/.bpte, by their ET12/BP08
-- identifier) and ONNX Runtime's Core ML cache folders (mlsh.ortcache, asked through the C scan
-- alone so a plain model loads neither that module nor mlsh.json). Returns the container
-- object, or (with opts, for commands that need one Model) the selected Core ML model; nil, nil
-- when the path is none of these.
local core = require "mlsh.core"

local M = {}

-- A Model that outlives its container object: the C side keeps the mapped bytes alive.
local function one_model(c, opts)
  local m, err = c:select(opts.delegate)
  if not m then c:close() return nil, err end
  c:detach(m)
  c:close()
  return m
end

function M.try_open(path, opts)
  local kind
  if core.pte.sniff(path) then kind = "mlsh.pte"
  else
    local list = core.ortcache.scan(path) -- what mlsh.ortcache.is_cache asks
    if list and #list > 0 then kind = "mlsh.ortcache" end
  end
  if not kind then return nil, nil end
  local c, err = require(kind).open(path)
  if not c then return nil, err end
  if opts then return one_model(c, opts) end
  return c
end

return M
