-- mlsh.engine.contract — what the loaders of rule, playbook and checklist files share: checking a
-- declared table against its field contract, with "did you mean" suggestions for typos.
local M = {}

-- Edit distance (Levenshtein) between two strings.
function M.distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a:sub(i, i) == b:sub(j, j) and 0 or 1))
    end
    prev = cur
  end
  return prev[#b]
end

-- " (did you mean 'x'?)" for the closest candidate within a few edits, else "".
function M.suggest(name, candidates)
  local best, bd
  name = tostring(name)
  for _, c in ipairs(candidates) do
    local d = M.distance(name, c)
    if d <= math.max(2, #c // 3) and (not bd or d < bd) then best, bd = c, d end
  end
  return best and (" (did you mean '" .. best .. "'?)") or ""
end

function M.sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

function M.nonempty_string(v) return type(v) == "string" and v:match("%S") ~= nil end

-- Check t against fields = {name = {required = bool, what = "description"} | true}: no unknown
-- field (with a suggestion), no missing required one. bad(fmt, ...) builds the failure; `where`
-- prefixes messages. Returns true, or bad's results.
function M.check_fields(t, fields, bad, where)
  local names = M.sorted_keys(fields)
  for k in pairs(t) do
    if type(k) ~= "string" or not fields[k] then
      return bad("%sunknown field '%s'%s", where, tostring(k), type(k) == "string" and M.suggest(k, names) or "")
    end
  end
  for _, k in ipairs(names) do
    if type(fields[k]) == "table" and fields[k].required and t[k] == nil then
      return bad("%smissing field '%s' (%s)", where, k, fields[k].what)
    end
  end
  return true
end

return M
