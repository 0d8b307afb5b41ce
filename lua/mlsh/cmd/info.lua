-- mlsh info [--json] MODEL... — what a model is: format, spec version, type, I/O, functions, ops,
-- layers, pipeline, weights. Exit 1 when a model cannot be read (one line on stderr per model).
local mlsh = require "mlsh"
local json = mlsh.json

local C = { summary = "summarise models (--json for one JSON object)", usage = "mlsh info [--json] MODEL..." }

function C.run(args)
  local as_json, paths = false, {}
  for _, a in ipairs(args) do
    if a == "--json" or a == "--format=json" then as_json = true
    elseif a == "-h" or a == "--help" then print("usage: " .. C.usage) return 0
    elseif a:sub(1, 1) == "-" then io.stderr:write("mlsh info: unknown option ", a, "\nusage: ", C.usage, "\n") return 2
    else paths[#paths + 1] = a end
  end
  if #paths == 0 then io.stderr:write("usage: ", C.usage, "\n") return 2 end
  local rc, objects = 0, {}
  for _, p in ipairs(paths) do
    local m, err = mlsh.try_load(p)
    local ok, res
    if m then
      ok, res = pcall(function() return as_json and m:info() or m:summary() end)
      if not ok then
        err = tostring(res)
        if not err:find(p, 1, true) then err = p .. ": " .. err end
      end
      m:close()
    end
    if m and ok then
      if as_json then objects[#objects + 1] = res else print(res) end
    else
      io.stderr:write("mlsh: ", err, "\n")
      rc = 1
    end
  end
  if as_json and #objects > 0 then
    print(json.encode(#paths == 1 and objects[1] or { models = json.array(objects) }, true))
  end
  return rc
end

return C
