local M = {}
function M.is_cache() return false end
return M
