-- mlsh graph MODEL [-o out.dot|out.svg] — the model's graph coloured by predicted device, each
-- segment boxed and device switches in red. DOT on stdout without -o; .svg needs graphviz's `dot`
-- (a clear message, exit 2, when it is not installed). Exit status: 0 written, 2 bad input.
local mlsh = require "mlsh"
local graph = require "mlsh.graph"
local rules = require "mlsh.engine.rules"
local argparse = require "mlsh.cli.args"

local C = {
  summary = "the graph coloured by predicted device, segments boxed (-o out.dot | out.svg)",
  usage = "mlsh graph MODEL [-o out.dot|out.svg] [--compute-units UNITS] [--target iOS17] [--rules DIR]... [--no-builtin] [--delegate N]\n"
    .. "                  [--static]",
}

local VALUES = { ["-o"] = "output", ["--output"] = "output", ["--compute-units"] = "compute_units", ["--target"] = "target",
                 ["--rules"] = "rules", ["--device"] = "device", ["--delegate"] = "delegate" }
local FLAGS = { ["--no-builtin"] = { "no_builtin", true }, ["-h"] = { "help", true }, ["--help"] = { "help", true },
                ["--static"] = { "calibrated", false }, ["--no-calibrated"] = { "calibrated", false },
                ["--calibrated"] = { "calibrated", true } } -- placement: --static = the first stage only

local function fail(msg)
  io.stderr:write("mlsh graph: ", msg, "\n")
  return 2
end

function C.run(args)
  local o, err = argparse.parse_options(args, { values = VALUES, multi = { "rules" }, flags = FLAGS })
  if not o then return fail(err .. "\nusage: " .. C.usage) end
  if o.help then print("usage: " .. C.usage) return 0 end
  if #o.paths ~= 1 then return fail((#o.paths == 0 and "no model given" or "one model at a time") .. "\nusage: " .. C.usage) end
  local rok, rerr = argparse.resolve_common(o)
  if not rok then return fail(rerr) end
  if o.output and o.output ~= "-" then
    local ext = o.output:match("%.([%w]+)$")
    if not ext or not graph.EXTENSIONS[ext:lower()] then
      return fail(string.format("%s: unknown output extension%s (use .dot or .svg)", o.output,
        ext and (" '." .. ext .. "'") or ""))
    end
  end
  local set, derr = rules.discover({ dirs = o.rules, builtin = not o.no_builtin })
  if not set then return fail(derr) end
  local m, lerr = mlsh.try_load(o.paths[1], { delegate = o.delegate })
  if not m then
    io.stderr:write("mlsh: ", lerr, "\n")
    return 2
  end
  local opts = { compute_units = o.compute_units, target = o.target, fallbacks = set.fallbacks, device = o.device,
                 calibrated = o.calibrated }
  local ok, res, msg, code = pcall(function()
    if not o.output or o.output == "-" then
      io.write((graph.dot(m, opts)))
      return true
    end
    return graph.write(m, o.output, opts)
  end)
  m:close()
  if not ok then return fail(tostring(res)) end
  if not res then
    io.stderr:write("mlsh graph: ", msg, "\n")
    return code or 2
  end
  if o.output and o.output ~= "-" then io.stderr:write("mlsh graph: wrote ", o.output, "\n") end
  return 0
end

return C
