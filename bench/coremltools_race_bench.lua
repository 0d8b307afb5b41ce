-- coremltools_race_bench.lua — the issue-12 race: on an 8.4M-weight fp16 ML program (two
-- 2048x2048 linear weights), the whole `mlsh compress` process (start to exit, package written)
-- against coremltools' compression call alone (timed inside Python around the call only: no
-- interpreter start, no import, no model load, no save), same run, same model, for four modes
-- (mlsh writing a new package; "repl" columns: replacing the previous run's package):
-- palettize 4-bit k-means, int8 per-channel, int4 per-block 32, prune 50%. Target: >= 20x.
-- coremltools is run from its source tree ($COREMLTOOLS_SRC, default /tmp/coremltools: a checkout
-- with the *_pb2.py modules, kmeans1d and libmilstoragepython built; see bench/README.md) with
-- $PYTHON (default /usr/bin/python3, else python3 on PATH). Without them the bench prints one
-- line and stops. Nothing of coremltools is part of mlsh.
-- Run: ./mlsh bench/coremltools_race_bench.lua [RUNS]   (RUNS default 5; medians)
local core = require "mlsh.core"
local home = require "mlsh.home"
package.path = home .. "/bench/?.lua;" .. package.path
local timing = require "timing"
local K = core.compress
local q = timing.q

local runs = 5
for _, a in ipairs(arg or {}) do runs = math.tointeger(tonumber(a)) or runs end
local D, LAYERS = 2048, 2
local bin = os.getenv("MLSH_BIN") or (home .. "/mlsh")
local ctsrc = os.getenv("COREMLTOOLS_SRC") or "/tmp/coremltools"

local function sh_line(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p:read("l")
  p:close()
  return s
end

local python = os.getenv("PYTHON")
if not python then
  python = core.fs.exists("/usr/bin/python3") and "/usr/bin/python3" or sh_line("command -v python3")
end
if not python or python == "" or (python:find("/") and not core.fs.exists(python)) then
  print("coremltools race: skipped (no python3" .. (python and python ~= "" and (" at " .. python) or "") .. ")") return
end
if not core.fs.exists(ctsrc .. "/coremltools/__init__.py") then
  print("coremltools race: skipped (no coremltools source at " .. ctsrc .. "; set COREMLTOOLS_SRC)") return
end

local dir = home .. "/build/bench"
assert(core.fs.mkdir_p(dir))
local src = string.format("%s/race_%dx%d.mlpackage", dir, LAYERS, D)
timing.linear_stack(src, LAYERS, D)
local out = dir .. "/race_out.mlpackage"

-- The Python side (modes from argv): prints "SKIP reason" or, per mode, "CT mode wall_s cpu_s
-- constexpr_ops" (medians over RUNS calls; ops counted in the last result, as evidence of work).
local PY = [[
import sys, os, time, logging, warnings
src, ctsrc, runs, modes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
try:
    import numpy
except ImportError:
    print("SKIP numpy is not importable by " + sys.executable); sys.exit(0)
sys.path.insert(0, ctsrc)
logging.disable(logging.WARNING)
warnings.simplefilter("ignore")
try:
    import coremltools as ct
    import coremltools.optimize.coreml as cto
    from coremltools import libmilstoragepython
except Exception as e:
    print("SKIP coremltools from %s does not import: %s" % (ctsrc, str(e).splitlines()[0])); sys.exit(0)
C = {
    "palettize4": (cto.palettize_weights, cto.OpPalettizerConfig(nbits=4, mode="kmeans")),
    "int8": (cto.linear_quantize_weights, cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")),
    "int4b32": (cto.linear_quantize_weights, cto.OpLinearQuantizerConfig(mode="linear_symmetric",
        dtype="int4", granularity="per_block", block_size=32)),
    "prune50": (cto.prune_weights, cto.OpMagnitudePrunerConfig(target_sparsity=0.5)),
}
model = ct.models.MLModel(src, skip_model_load=True)
for mode in modes:
    fn, op = C[mode]
    config = cto.OptimizationConfig(global_config=op)
    walls, cpus = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn(model, config=config)
        walls.append(time.perf_counter() - t0); cpus.append(time.process_time() - c0)
    n = 0
    for f in res.get_spec().mlProgram.functions.values():
        for b in f.block_specializations.values():
            n += sum(1 for o in b.operations if o.type.startswith("constexpr_"))
    walls.sort(); cpus.sort()
    print("CT %s %.4f %.4f %d" % (mode, walls[(runs - 1) // 2], cpus[(runs - 1) // 2], n))
    sys.stdout.flush()
]]
local script = dir .. "/coremltools_race.py"
local fh = assert(io.open(script, "w"))
fh:write(PY)
fh:close()

local cases = {
  { "palettize4", "palettize 4-bit k-means", "--palettize 4" },
  { "int8", "int8 per-channel", "--quantize int8" },
  { "int4b32", "int4 per-block 32", "--quantize int4 --per-block 32" },
  { "prune50", "prune 50%", "--prune 0.5" },
}
-- One Python process per mode, right before that mode's mlsh runs, so both sides of a row see
-- about the same load on a shared machine.
local function coremltools_call(mode)
  local p = io.popen(table.concat({ q(python), q(script), q(src), q(ctsrc), tostring(runs), mode }, " ") .. " 2>&1")
  local text = p:read("a")
  p:close()
  local skip = text:match("SKIP ([^\n]*)")
  if skip then return nil, skip end
  local w, c, n = text:match("CT %S+ (%S+) (%S+) (%d+)")
  assert(w, "coremltools failed on " .. mode .. ":\n" .. text)
  return { wall = tonumber(w), cpu = tonumber(c), ops = tonumber(n) }
end

-- mlsh's side, RUNS times: the process writing a new package (the previous run's output is
-- removed before the timer starts: coremltools' call also writes a new weight file and deletes
-- nothing), then the same process replacing an existing package (it also deletes the old one,
-- ~0.35 ms per MB on this ext4): medians of wall and CPU, and of the replacing wall.
local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end
local function mlsh_runs(setting)
  local cmd = q(bin) .. " compress " .. q(src) .. " -o " .. q(out) .. " --quiet " .. setting
  local walls, cpus, repl = {}, {}, {}
  for i = 1, runs do
    core.fs.remove_tree(out)
    walls[i], cpus[i] = timing.measure(cmd, 1)
    cpus[i] = cpus[i] or 0 / 0
    repl[i] = timing.measure(cmd, 1)
  end
  return median(walls), median(cpus), median(repl)
end

local header = false
for _, c in ipairs(cases) do
  local r, skip = coremltools_call(c[1])
  if not r then print("coremltools race: skipped (" .. skip .. ")") return end
  if not header then
    header = true
    print(string.format("%d x [%d, %d] fp16 = %.1fM weights; %s; %d threads; median of %d",
      LAYERS, D, D, LAYERS * D * D / 1e6, python, K.threads(), runs))
    print(string.format("%-24s %9s %8s %9s %8s %8s %8s %4s %10s %7s", "mode", "mlsh wall", "mlsh cpu",
      "ct call", "ct cpu", "x wall", "x cpu", "ops", "repl wall", "x repl"))
  end
  local wall, cpu, repl = mlsh_runs(c[3])
  print(string.format("%-24s %8.3fs %7.3fs %8.3fs %7.3fs %7.1fx %7.1fx %4d %9.3fs %6.1fx", c[2], wall, cpu,
    r.wall, r.cpu, r.wall / wall, r.cpu / cpu, r.ops, repl, r.wall / repl))
end
core.fs.remove_tree(out)
