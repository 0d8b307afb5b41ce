-- mlsh.term — whether to colour output, and the colours. Colour only when the stream is a
-- terminal and NO_COLOR is unset or empty (https://no-color.org); never when piped, so files, CI
-- logs and JSON stay plain. MLSH_COLOR=always|never overrides (tests drive a pty with it unset).
--
--   local term = require "mlsh.term"
--   local c = term.for_stream(1)        -- painter for stdout: c.red("x"), c.bold("y"), c.enabled
--   term.enabled(1)                     -- the decision alone
--   term.painter(true|false)            -- a painter with a forced decision (renderers take one)
local M = {}

local CODES = {
  bold = "1", dim = "2", red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36",
  grey = "90",
}
M.CODES = CODES

-- The decision for file descriptor fd (1 = stdout, 2 = stderr). getenv is injectable for tests.
function M.enabled(fd, getenv)
  getenv = getenv or os.getenv
  local force = getenv("MLSH_COLOR")
  if force == "always" then return true end
  if force == "never" then return false end
  local no_color = getenv("NO_COLOR")
  if no_color and no_color ~= "" then return false end
  if getenv("TERM") == "dumb" then return false end
  local ok, core = pcall(require, "mlsh.core")
  if not ok or not core.repl or not core.repl.isatty then return false end
  return core.repl.isatty(fd or 1) and true or false
end

-- A painter: one function per colour name that wraps text when enabled and returns it unchanged
-- otherwise, so renderers never test the decision themselves.
function M.painter(enabled)
  local p = { enabled = enabled and true or false }
  for name, code in pairs(CODES) do
    if enabled then
      p[name] = function(s) return "\27[" .. code .. "m" .. tostring(s) .. "\27[0m" end
    else
      p[name] = function(s) return tostring(s) end
    end
  end
  -- severity / status words in their usual colours
  local by_word = { error = "red", fail = "red", warning = "yellow", unknown = "yellow", info = "cyan", pass = "green",
                    ANE = "green", GPU = "blue", CPU = "grey" }
  function p.word(w, text)
    local f = p[by_word[w] or ""]
    return f and f(text or w) or tostring(text or w)
  end
  return p
end

function M.for_stream(fd, getenv) return M.painter(M.enabled(fd, getenv)) end

-- Remove colour codes (for width computations and tests).
function M.strip(s) return (tostring(s):gsub("\27%[[%d;]*m", "")) end

return M
