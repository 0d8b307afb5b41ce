-- mlsh.compress.progress — a one-line progress bar on stderr for long compressions. Shown only
-- when stderr is a terminal, NO_COLOR is unset or empty, TERM is not "dumb" and the caller did not
-- ask for quiet, so logs, pipes and CI output never see carriage returns.
--
--   local bar = progress.new{ quiet = false, total = n }   -- bar.enabled tells whether it draws
--   bar:update(i, label)   -- i of total done, label = what is being worked on
--   bar:done()             -- erases the line
local M = {}

M.WIDTH = 28

function M.enabled(quiet, getenv, isatty)
  getenv = getenv or os.getenv
  if quiet then return false end
  local nc = getenv("NO_COLOR")
  if nc and nc ~= "" then return false end
  if getenv("TERM") == "dumb" then return false end
  if isatty == nil then
    local ok, core = pcall(require, "mlsh.core")
    isatty = ok and core.repl and core.repl.isatty and core.repl.isatty(2) or false
  end
  return isatty and true or false
end

local Bar = {}
Bar.__index = Bar

-- opts: {total, quiet, out = stream (default io.stderr), enabled = force (tests), getenv, isatty}
function M.new(opts)
  opts = opts or {}
  local enabled = opts.enabled
  if enabled == nil then enabled = M.enabled(opts.quiet, opts.getenv, opts.isatty) end
  return setmetatable({ total = opts.total or 0, out = opts.out or io.stderr, enabled = enabled, drawn = false,
                        start = os.time() }, Bar)
end

function M.render(i, total, label, width)
  width = width or M.WIDTH
  local frac = total > 0 and math.min(1, i / total) or 1
  local full = math.floor(frac * width + 0.5)
  label = tostring(label or "")
  if #label > 40 then label = "…" .. label:sub(-39) end
  return string.format("[%s%s] %3d%% %d/%d %s", string.rep("#", full), string.rep(".", width - full),
    math.floor(frac * 100 + 0.5), i, total, label)
end

function Bar:update(i, label)
  if not self.enabled then return end
  self.out:write("\r\27[K", M.render(i, self.total, label))
  self.out:flush()
  self.drawn = true
end

function Bar:done()
  if self.enabled and self.drawn then
    self.out:write("\r\27[K")
    self.out:flush()
  end
  self.drawn = false
end

return M
