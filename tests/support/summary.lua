-- busted output handler: a line of progress dots, one line per failure with its place and
-- message, then the plain summary line CI reads, always a line of its own and the last:
-- "N passed, N failed" (", N skipped" when tests were pending).
return function(options)
  local busted = require "busted"
  local handler = require("busted.outputHandlers.base")()

  local function report(kind, t)
    local msg = t.message
    if type(msg) ~= "string" then msg = tostring(msg) end
    local where = t.trace and t.trace.short_src and (t.trace.short_src .. ":" .. tostring(t.trace.currentline)) or "?"
    io.write(string.format("%s: %s\n  at %s\n  %s\n", kind, t.name or "?", where, (msg:gsub("\n", "\n  "))))
  end

  handler.suiteEnd = function()
    io.write("\n") -- end the line of progress dots: the summary is a line of its own
    for _, t in ipairs(handler.failures) do report("FAIL", t) end
    for _, t in ipairs(handler.errors) do report("ERROR", t) end
    local passed, failed, skipped = #handler.successes, #handler.failures + #handler.errors, #handler.pendings
    local line = string.format("%d passed, %d failed", passed, failed)
    if skipped > 0 then line = line .. string.format(", %d skipped", skipped) end
    io.write(line, "\n")
    io.flush()
    return nil, true
  end

  handler.testEnd = function(element, parent, status)
    io.write(status == "success" and "." or status == "pending" and "s" or "F")
    io.flush()
    return nil, true
  end

  busted.subscribe({ "suite", "end" }, handler.suiteEnd)
  busted.subscribe({ "test", "end" }, handler.testEnd, { predicate = handler.cancelOnPending })
  return handler
end
