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

-- Precompiled modules (repl/bytecode.h): a module's bytecode is loaded only while it is at least as
-- new as its source, only from mlsh's own folder, and reads as the source in messages. A copy of the
-- library in a temporary home (MLSH_HOME) gets a probe module whose source and bytecode answer
-- differently; mtimes are set with touch.
describe("precompiled Lua modules", function()
  local LIB = (os.getenv("MLSH_HOME") or ".") .. "/lua"
  local SRC = "local M = {}\nfunction M.where() return 'source' end\nfunction M.boom() error('boom') end\nreturn M\n"
  local BC = "local M = {}\nfunction M.where() return 'bytecode' end\nfunction M.boom() error('boom') end\nreturn M\n"
  local ASK = "local p = require 'mlsh.zz_probe' local ok, e = pcall(p.boom) "
    .. "io.write(p.where(), ' ', e, ' ', debug.getinfo(p.where, 'S').source)"

  local function home_with_probe()
    local home = F.tmpdir()
    assert(os.execute("cp -R " .. F.q(LIB) .. " " .. F.q(home .. "/lua")))
    F.write(home .. "/lua/mlsh/zz_probe.lua", SRC)
    assert(core.fs.mkdir_p(home .. "/build/lua/mlsh"))
    F.write(home .. "/build/lua/mlsh/zz_probe.luac", string.dump(assert(load(BC, "=elsewhere"))))
    return home
  end
  local function touch(path, when) assert(os.execute("touch -d " .. F.q(when) .. " " .. F.q(path))) end
  local function ask(home, env)
    local p = io.popen(string.format("env MLSH_HOME=%s %s %s -e %s 2>&1", F.q(home), env or "", F.q(BIN), F.q(ASK)))
    local out = p:read("a")
    p:close()
    return out
  end

  local has_luac = os.execute("for c in luac5.4 luac-5.4 luac54 luac; do command -v $c >/dev/null 2>&1 "
    .. "&& $c -v 2>&1 | grep -q '^Lua 5\\.4' && exit 0; done; exit 1") == true
  local it_luac = has_luac and it or pending
  it_luac("the build made bytecode for every module, not older than its source", function()
    local p = io.popen("cd " .. F.q(LIB) .. " && find mlsh -name '*.lua'")
    local n = 0
    for rel in p:lines() do
      local bc = LIB .. "/../build/lua/" .. rel .. "c"
      assert.is_true(os.execute(string.format("test -f %s && ! test %s -nt %s", F.q(bc), F.q(LIB .. "/" .. rel), F.q(bc))) == true, bc)
      n = n + 1
    end
    p:close()
    assert.is_true(n > 100)
  end)

  it("is loaded while fresh, named after its source; the source once it is newer", function()
    local home = home_with_probe()
    local src, bc = home .. "/lua/mlsh/zz_probe.lua", home .. "/build/lua/mlsh/zz_probe.luac"
    touch(src, "2020-01-01 00:00:00")
    touch(bc, "2020-01-01 00:00:01")
    assert.equal("bytecode " .. src .. ":3: boom @" .. src, ask(home))
    touch(bc, "2020-01-01 00:00:00") -- the same time counts as fresh
    assert.equal("bytecode " .. src .. ":3: boom @" .. src, ask(home))
    touch(src, "2020-01-01 00:00:02") -- edited after the build
    assert.equal("source " .. src .. ":3: boom @" .. src, ask(home))
  end)

  it("is loaded beside the source in an installed layout, never without a source or from LUA_PATH", function()
    local home = home_with_probe()
    local src = home .. "/lua/mlsh/zz_probe.lua"
    assert(os.rename(home .. "/build/lua/mlsh/zz_probe.luac", src .. "c"))
    touch(src, "2020-01-01 00:00:00")
    assert.equal("bytecode " .. src .. ":3: boom @" .. src, ask(home))
    os.remove(src)
    assert.matches("module 'mlsh.zz_probe' not found", ask(home))
    local out = ask(home, "LUA_PATH=" .. F.q(home .. "/lua/?.luac"))
    assert.matches("attempt to load a binary chunk", out, 1, true)
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
