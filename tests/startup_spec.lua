-- What a start loads. GNU readline is loaded when the REPL starts (core/readlinedl.c), not linked:
-- commands, -e code and scripts never map it; the REPL does, and keeps working with a one-line
-- notice when the library cannot be loaded ($MLSH_READLINE names the file to load instead of
-- searching). Linux (/proc/self/maps); the terminal case needs tmux. Timings: bench/startup_bench.lua.
local F = require "fixtures"
local core = require "mlsh.core"

local BIN = os.getenv("MLSH_BIN") or "./mlsh"
local MAPS = "for l in io.lines('/proc/self/maps') do if l:find('libreadline', 1, true) then "
  .. "io.write('READLINE=', l:match('(/%S+)$'), '\\n') return end end io.write('READLINE=none\\n')"

local function readable_maps()
  local f = io.open("/proc/self/maps")
  if f then f:close() end
  return f ~= nil
end

-- Run the REPL with `input` on a pipe (env: extra VAR=value words); returns stdout, stderr, status.
local function piped_repl(input, env)
  local home = F.tmpdir()
  local inf, errf = home .. "/in.txt", home .. "/err.txt"
  F.write(inf, input)
  local p = io.popen(string.format("env HOME=%s %s %s <%s 2>%s", F.q(home), env or "", F.q(BIN), F.q(inf), F.q(errf)))
  local out = p:read("a"):gsub("mlsh> ", ""):gsub(">> ", "") -- the prompts, printed off a terminal too
  local _, _, code = p:close()
  return out, F.read(errf), code, home
end

describe("the mlsh binary", function()
  -- Lua may be linked into mlsh statically (Makefile): the binary must then export the Lua API, as
  -- a shared liblua does, or C modules (which take it from their host) fail to load. core.so is one.
  it("gives C modules that require loads the Lua API", function()
    local so = (os.getenv("MLSH_HOME") or ".") .. "/build/lua/mlsh/core.so"
    local code = string.format("local f = assert(package.loadlib(%q, 'luaopen_mlsh_core')) "
      .. "io.write(type(f().dtype.bits))", so)
    local out, err, code_ = F.run("-e " .. F.q(code))
    assert.equal(0, code_, err)
    assert.equal("table", out)
  end)
end)

if not readable_maps() then
  pending("which libraries a process maps (needs /proc/self/maps)")
  return
end

describe("readline on first use", function()
  it("is not mapped by -e code, a script or a subcommand's start", function()
    local out, err, code = F.run("-e " .. F.q(MAPS))
    assert.equal(0, code, err)
    assert.equal("READLINE=none\n", out)
    local dir = F.tmpdir()
    F.write(dir .. "/s.lua", MAPS)
    out = F.run(F.q(dir .. "/s.lua"))
    assert.equal("READLINE=none\n", out)
  end)

  if not core.repl.has_readline then
    pending("the REPL maps readline (this build has no readline header)")
    return
  end

  it("is mapped once the REPL starts, and the history is written", function()
    local out, err, code, home = piped_repl(MAPS .. "\n1+1\n")
    assert.equal(0, code, err)
    assert.matches("READLINE=/%S*libreadline", out)
    assert.matches("\n2\n$", out)
    assert.equal("", err)
    assert.matches("1%+1", F.read(home .. "/.mlsh_history"))
  end)

  it("when it cannot be loaded, the piped REPL still evaluates, with no notice off a terminal", function()
    local out, err, code = piped_repl("1+1\nfunction f()\nreturn 7 end\nf()\n",
      "MLSH_READLINE=/nonexistent/libreadline.so.8")
    assert.equal(0, code, err)
    assert.equal("2\n7\n", out)
    assert.equal("", err)
  end)
end)

if not core.repl.has_readline or os.execute("command -v tmux >/dev/null 2>&1") ~= true then
  pending("the REPL without readline on a terminal (needs tmux and a readline build)")
  return
end

describe("the REPL on a terminal when readline cannot be loaded", function()
  local SOCKET = "mlsh-rl-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e6))
  local function tmux(args)
    local p = io.popen("tmux -L " .. SOCKET .. " " .. args .. " 2>&1")
    local out = p:read("a")
    p:close()
    return out
  end
  local function wait(text)
    local deadline, screen = os.time() + 15, nil
    repeat
      screen = tmux("capture-pane -p -J -t rl")
      if screen:find(text, 1, true) then return screen end
      os.execute("sleep 0.1")
    until os.time() > deadline
    error("timed out waiting for " .. text .. "; screen:\n" .. screen, 2)
  end
  local function line(text)
    tmux("send-keys -t rl -l " .. F.q(text))
    tmux("send-keys -t rl Enter")
  end
  teardown(function() tmux("kill-server") end)

  it("says so in one line, then reads plain lines (multi-line chunks too) until Ctrl-D", function()
    local cmd = string.format("env HOME=%s MLSH_HOME=%s MLSH_READLINE=/nonexistent/libreadline.so.8 %s; echo EXITED=$?; sleep 30",
      F.q(F.tmpdir()), F.q(os.getenv("MLSH_HOME") or "."), F.q(BIN))
    tmux(string.format("new-session -d -s rl -x 200 -y 40 %s", F.q(cmd)))
    local screen = wait("mlsh> ")
    assert.matches("mlsh: no line editing or history %(readline could not be loaded: [^\n]*nonexistent", screen)
    line("x = 40 + 2")
    line("function g()")
    line("return x end")
    line("g()")
    wait("\n42\n")
    tmux("send-keys -t rl C-d")
    screen = wait("EXITED=0")
    assert.equal(1, select(2, screen:gsub("no line editing", "")), screen)
  end)
end)
