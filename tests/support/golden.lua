-- Golden CLI outputs: run the mlsh binary, normalise the run's folders to placeholders, and compare
-- byte for byte with tests/golden/<set>/<name>.txt. MLSH_UPDATE_GOLDEN=1 rewrites the files from
-- the current output (then review the diff: these files are the CLI/JSON contracts).
-- The models: the bundled examples (examples/*.lua, built here as `make examples` builds them)
-- and the test fixtures (tests/support/fixtures.lua, rule_fixtures.lua, onnx_builder.lua).
local core = require "mlsh.core"
local F = require "fixtures"

local G = {}
local HOME = os.getenv("MLSH_HOME") or "."

local function pat(s) return (s:gsub("%p", "%%%0")) end

-- The examples, built once per run into build/golden-examples.
local examples
function G.examples()
  if examples then return examples end
  local dir = HOME .. "/build/golden-examples"
  core.fs.remove_tree(dir)
  assert(core.fs.mkdir_p(dir))
  for _, name in ipairs({ "mobilenet_like", "small_models", "transformer_encoder" }) do
    local out, err, code = F.run(F.q(HOME .. "/examples/" .. name .. ".lua") .. " " .. F.q(dir))
    assert(code == 0, name .. ": " .. out .. err)
  end
  examples = dir
  return dir
end

-- stdout and exit status of `mlsh args`, every folder in `dirs` ({path = placeholder}) replaced.
function G.run(args, dirs)
  local out, err, code = F.run(args)
  local paths = {}
  for path in pairs(dirs) do paths[#paths + 1] = path end
  table.sort(paths, function(a, b) return #a > #b end) -- a folder may be a prefix of another
  for _, path in ipairs(paths) do out = out:gsub(pat(path), dirs[path]) end
  if HOME:sub(1, 1) == "/" then out = out:gsub(pat(HOME), "<home>") end
  return out, err, code
end

-- Compare out with tests/golden/<set>/<name>.txt (or rewrite it under MLSH_UPDATE_GOLDEN=1).
function G.compare(set, name, out)
  local path = HOME .. "/tests/golden/" .. set .. "/" .. name .. ".txt"
  if os.getenv("MLSH_UPDATE_GOLDEN") == "1" then F.write(path, out) end
  local f = io.open(path, "rb")
  assert(f, "missing golden file " .. path .. " (run with MLSH_UPDATE_GOLDEN=1)")
  local want = f:read("a")
  f:close()
  return want
end

return G
