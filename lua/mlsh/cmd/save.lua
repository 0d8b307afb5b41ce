-- mlsh save IN OUT [--in-place] — rewrite a model into the container OUT's name asks for
-- (.mlmodel, .mlpackage, .mlpackage.zip), validating it and rebuilding its weight file.
local mlsh = require "mlsh"

local C = { summary = "validate and write a model as .mlmodel, .mlpackage or .mlpackage.zip",
            usage = "mlsh save IN OUT [--in-place]" }

function C.run(args)
  local paths, in_place = {}, false
  for _, a in ipairs(args) do
    if a == "--in-place" then in_place = true
    elseif a == "-h" or a == "--help" then print("usage: " .. C.usage) return 0
    elseif a:sub(1, 1) == "-" then io.stderr:write("mlsh save: unknown option ", a, "\nusage: ", C.usage, "\n") return 2
    else paths[#paths + 1] = a end
  end
  if #paths ~= 2 then io.stderr:write("usage: ", C.usage, "\n") return 2 end
  local m, err = mlsh.try_load(paths[1])
  if not m then io.stderr:write("mlsh: ", err, "\n") return 1 end
  local ok, e = pcall(m.save, m, paths[2], { in_place = in_place })
  m:close()
  if not ok then io.stderr:write("mlsh: ", tostring(e), "\n") return 1 end
  return 0
end

return C
