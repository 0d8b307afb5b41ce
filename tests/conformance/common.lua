-- Shared plumbing of the conformance runners: shell calls, facts files, the corpus listing.
local json = require "mlsh.json"

local C = {}
C.bin = os.getenv("MLSH_BIN") or "./mlsh"
C.TIMEOUT = tonumber(os.getenv("MLSH_CONFORMANCE_TIMEOUT") or "120")

function C.sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

function C.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function C.exists(p) return select(2, C.sh("test -e " .. C.q(p))) == 0 end

function C.readjson(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local ok, v = pcall(json.decode, s)
  return ok and v or nil
end

-- Every model with a .facts.json in dir: {model = file name, facts = facts path}. Facts of
-- `X.mlmodel` may be named `X.facts.json` (coreml-real) or `X.mlmodel.facts.json` (coreml).
function C.models_in(dir)
  local out = {}
  for name in C.sh("ls -1 " .. C.q(dir) .. " 2>/dev/null"):gmatch("[^\n]+") do
    if name:match("%.facts%.json$") then
      local model = name:gsub("%.facts%.json$", "")
      if not C.exists(dir .. "/" .. model) then
        for _, ext in ipairs({ ".mlmodel", ".mlpackage", ".mlmodelc" }) do
          if C.exists(dir .. "/" .. model .. ext) then model = model .. ext break end
        end
      end
      out[#out + 1] = { model = model, facts = dir .. "/" .. name }
    end
  end
  return out
end

-- Exit quietly (status 0) when the corpus is not there: CI without ../shared is not a failure.
function C.require_corpus(corpus, label)
  if not C.exists(corpus) then
    print(label .. ": " .. corpus .. " is absent; nothing to check (this is not a failure)")
    os.exit(0)
  end
end

return C
