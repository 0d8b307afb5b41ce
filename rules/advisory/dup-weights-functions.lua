-- Advisory (playbook 3b): in a multifunction model, weights that two functions could share but that
-- are stored twice (same dtype, shape and bytes at different places) multiply the package size and
-- the memory; and even shared weights cost memory per function at load (coremltools#2351: memory
-- grows linearly with the number of functions).
return {
  id = "advisory-dup-weights-functions",
  title = "weights duplicated across the functions of a multifunction model",
  categories = { "memory", "load" },
  severity = "warning",
  pattern = "3b",
  scope = "model",
  evidence = { "https://github.com/apple/coremltools/issues/2351" },
  affected = { spec = "9+ (multifunction)", coremltools = "8.0+ (ct.utils.save_multifunction)" },
  fix = "merge the functions with ct.utils.save_multifunction so identical weights are stored once, and keep the "
    .. "number of functions small (memory grows per function even when weights are shared)",
  applies = function(m) return m.program ~= nil and #m:functions() > 1 end,
  check = function(m, ctx)
    local groups, dups, bytes = {}, 0, 0
    local example
    for _, w in ipairs(m:weights()) do
      if w.storage == "blob" and (w.bytes or 0) >= 1024 then
        local key = string.format("%s|%s", w.dtype, table.concat(w.shape or {}, "x"))
        groups[key] = groups[key] or {}
        table.insert(groups[key], w)
      end
    end
    for _, list in pairs(groups) do
      for i = 2, #list do
        local a = list[i]
        for j = 1, i - 1 do
          local b = list[j]
          if a["function"] ~= b["function"] and (a.file ~= b.file or a.offset ~= b.offset) then
            local function raw(w) return w:values():encode(w.dtype) end
            local ok1, ba = pcall(raw, a)
            local ok2, bb = pcall(raw, b)
            if ok1 and ok2 and type(ba) == "string" and ba == bb then
              dups, bytes = dups + 1, bytes + (a.bytes or 0)
              example = example or { a, b }
              break
            end
          end
        end
      end
    end
    if dups > 0 then
      ctx:report { message = string.format("%d weight(s) (%.1f MB) are stored again in another function (e.g. %s in "
        .. "%s and %s in %s)", dups, bytes / 1e6, example[1].op or "?", example[1]["function"] or "?", example[2].op or "?",
        example[2]["function"] or "?"), evidence = { duplicates = dups, bytes = bytes } }
    end
  end,
}
