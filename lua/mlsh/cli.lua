local M = {}
function M.main(argv) io.stderr:write("mlsh: cli not ready\n") return 2 end
return M
