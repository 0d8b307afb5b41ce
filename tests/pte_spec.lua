-- ExecuTorch .pte / .bpte programs (core/flatbuf.c, core/pte.c, core/inmemoryfs.c, mlsh.pte) on
-- self-written programs (tests/support/pte_builder.lua) around mlsh's own fixture models. Expected
-- values come from what the builder was given, never from the reader.
local F = require "fixtures"
local X = require "pte_fixtures"
local PB = require "pte_builder"
local json = require "mlsh.json"
local mlsh = require "mlsh"
local pte = require "mlsh.pte"

local HOME = os.getenv("MLSH_HOME") or "."
local dir = HOME .. "/build/test-pte"
local fx

setup(function()
  require("mlsh.core").fs.remove_tree(dir)
  assert(require("mlsh.core").fs.mkdir_p(dir))
  fx = X.build_all(dir)
end)

local function run(args) return F.run(args) end

-- The files of a fixture tree as {path = bytes}.
local function tree_files(t, prefix, out)
  out = out or {}
  for _, c in ipairs(t.children or {}) do
    local p = prefix and (prefix .. "/" .. c.name) or c.name
    if c.children then tree_files(c, p, out) else out[p] = c.data end
  end
  return out
end

describe("ExecuTorch programs", function()
  it("reads headers, segments and delegate locations in every layout", function()
    local want = { inline = { 0, "inline", 0 }, seg24 = { 24, "segment", 2 }, seg32 = { 32, "segment", 2 },
                   large = { 32, "segment", 2 }, bundled = { 32, "segment", 2 }, sparse = { 32, "segment", 2 } }
    for name, w in pairs(want) do
      local p = assert(pte.open(fx[name]))
      local info = p._info
      assert.equal(w[1], info.header_len, name)
      assert.equal(w[3], #info.segments, name)
      local d = p:delegates()[1]
      assert.equal(w[2], d.location, name)
      assert.equal("CoreMLBackend", d.backend)
      assert.equal("forward", d.method)
      assert.same({ compute_units = "cpu_and_ne", min_deployment_target = "7", model_compute_precision = "float16",
                    model_type = "model" }, d.compile_specs)
      assert.equal(name == "bundled", p.bundled)
      p:close()
    end
  end)

  it("returns the delegate payload byte for byte", function()
    local payload = PB.flatten(X.package_tree())
    for _, name in ipairs({ "inline", "seg24", "seg32", "bundled" }) do
      local p = assert(pte.open(fx[name]))
      assert.equal(payload, p:delegates()[1]:bytes(), name)
      p:close()
    end
  end)

  it("reads methods: inputs, outputs, operator names and the instruction order", function()
    local p = assert(pte.open(fx.breaks))
    local m = p:methods()[1]
    assert.same({ 0 }, m.inputs)
    assert.same({ 1 }, m.outputs)
    assert.same({ 5 }, m.input_types)
    assert.same({ "aten::sigmoid", "aten::add" }, { m.operators[1].name, m.operators[2].name })
    local kinds = {}
    for i, ins in ipairs(m.instructions) do kinds[i] = ins.kind .. ":" .. ins.index end
    assert.same({ "2:0", "1:0", "1:1", "2:1", "2:2" }, kinds)
    local ids = {}
    for i, d in ipairs(p:delegates()) do ids[i] = d.backend end
    assert.same({ "CoreMLBackend", "CoreMLBackend", "XnnpackBackend" }, ids)
    assert.equal(100, p:delegates()[3].size)
    p:close()
  end)

  it("resolves CMJR references through named data, one payload for two methods", function()
    local p = assert(pte.open(fx.cmjr))
    local d = p:delegates()
    assert.equal(2, #d)
    assert.equal("prefill", d[1].method)
    assert.equal("decode", d[2].method)
    for i = 1, 2 do
      assert.equal("named_data", d[i].location)
      assert.equal("coreml_executorch_abc", d[i].named_key)
    end
    assert.equal("decode", d[2]["function"])
    assert.equal(d[1]:bytes(), d[2]:bytes())
    assert.equal(PB.flatten(X.package_tree{ root = "lowered_module_partition_0" }), d[1]:bytes())
    p:close()
  end)

  it("lists the payload tree and reads its files in place", function()
    local p = assert(pte.open(fx.large))
    local d = p:delegates()[1]
    local t = assert(d:tree())
    assert.equal("lowered_module", t.root)
    local want = tree_files(X.package_tree())
    local got = {}
    for _, n in ipairs(t.nodes) do
      if not n.dir then got[n.path] = assert(d:file(n.path)) end
    end
    assert.same(want, got)
    p:close()
  end)

  it("opens the Core ML payload as a normal Model (mlpackage and mlmodelc)", function()
    local p = assert(pte.open(fx.seg32))
    local m = assert(p:delegates()[1]:model())
    assert.equal("mlpackage", m.format)
    assert.equal(7, m.spec_version)
    assert.equal("mlProgram", m.model_type)
    assert.equal("x", m:inputs()[1].name)
    local spec = F.mlprogram()
    local files = {}
    for _, f in ipairs(m:_files()) do files[f.path] = f.bytes end
    assert.equal(#spec:encode(), files["model.mlmodel"])
    p:close()
    local c = assert(pte.open(fx.mlmodelc))
    local cm = assert(c:delegates()[1]:model())
    assert.equal("mlmodelc", cm.format)
    assert.equal(7, cm.spec_version)
    local ops = {}
    for _, o in ipairs(cm:ops()) do ops[#ops + 1] = o.type end
    assert.same({ "mul" }, ops)
    c:close()
  end)

  it("keeps a delegate's Model usable after the program is closed (mlsh.load with a delegate)", function()
    local m = assert(mlsh.try_load(fx.cmjr, { delegate = "decode:0" }))
    assert.equal(7, m.spec_version)
    collectgarbage() -- the program object is gone; the model's bytes stay mapped
    local h = assert(m:_blob_header("weights/weight.bin"))
    assert.equal(1, h.count)
    local spec, wb = F.mlprogram()
    local rec = assert(m:_blob("weights/weight.bin", 64))
    assert.equal(256, rec.size)
    assert.equal(wb:sub(rec.data_offset + 1, rec.data_offset + 256), m:_blob_bytes("weights/weight.bin", 64))
    assert.truthy(spec)
    m:close()
    local _, err = mlsh.try_load(fx.cmjr, {})
    assert.matches("2 Core ML delegates; choose one with %-%-delegate", err)
    _, err = mlsh.try_load(fx.breaks, { delegate = 7 })
    assert.matches("out of range", err)
  end)
end)

describe("mlsh info X.pte", function()
  it("prints version markers, methods, delegates with compile specs and the payload summary", function()
    local out, err, code = run("info " .. F.q(fx.breaks))
    assert.equal(0, code, err)
    assert.matches("32%-byte extended header %(ExecuTorch 1%.0 or later%)", out)
    assert.matches("method forward: inputs %[0:Tensor%], outputs %[1:Tensor%], 2 operators %(aten::sigmoid%.out, aten::add%.out%), 3 delegates", out)
    assert.matches("delegate 0: CoreMLBackend, segment", out)
    assert.matches("min_deployment_target = 7 %(iOS16%)", out)
    assert.matches("delegate 2: XnnpackBackend, segment, 100 B", out)
    assert.matches("function main <CoreML6>: 4 ops", out)
  end)

  it("--json follows the contract shape", function()
    local out, err, code = run("info --json " .. F.q(fx.breaks))
    assert.equal(0, code, err)
    local o = json.decode(out)
    local function keys(t)
      local k = {}
      for name in pairs(t) do k[#k + 1] = name end
      table.sort(k)
      return table.concat(k, ",")
    end
    assert.equal("format,methods", keys(o))
    assert.equal("pte", o.format)
    assert.equal(1, #o.methods)
    assert.equal("delegates,name", keys(o.methods[1]))
    local d = o.methods[1].delegates
    assert.equal(3, #d)
    assert.equal("backend,compile_specs,index,location,model", keys(d[1]))
    assert.equal("backend,compile_specs,index,location,size", keys(d[3]))
    assert.same({ 0, 1, 2 }, { d[1].index, d[2].index, d[3].index })
    assert.equal("segment", d[1].location)
    assert.equal(100, d[3].size)
    assert.equal("cpu_and_ne", d[1].compile_specs.compute_units)
    -- the payload's info is what `mlsh info --json` says of the same package written to disk
    local pkgdir = dir .. "/plain.mlpackage"
    local spec, wb = F.mlprogram()
    F.write_package(pkgdir, spec, wb)
    local pout = run("info --json " .. F.q(pkgdir))
    local want = json.decode(pout)
    want.path, d[1].model.path = nil, nil
    assert.same(want, d[1].model)
  end)

  it("--json gives every location: inline, segment and named_data", function()
    for name, loc in pairs({ inline = "inline", seg24 = "segment", cmjr = "named_data" }) do
      local out, err, code = run("info --json " .. F.q(fx[name]))
      assert.equal(0, code, err)
      assert.equal(loc, json.decode(out).methods[1].delegates[1].location)
    end
  end)

  it("refuses corrupt programs with one line naming the file, exit 1", function()
    local cases = { bad_root = "table offset out of range", bad_vtable = "vtable out of range",
                    bad_segment = "runs past the end of the file", cycle = "has a cycle",
                    escape = "escapes its folder", dotdot = "escapes its folder",
                    et11 = "identifier ET11 is not the supported ET12",
                    bad_manifest = ":forward/0:model.mlpackage/Manifest.json: invalid JSON" }
    for name, why in pairs(cases) do
      local before = F.read(fx[name])
      local out, err, code = run("info " .. F.q(fx[name]))
      assert.equal(1, code, name)
      assert.equal("", out)
      local lines = select(2, err:gsub("\n", ""))
      assert.equal(1, lines, err)
      assert.truthy(err:find(fx[name], 1, true), err)
      assert.truthy(err:find(why, 1, true), name .. ": " .. err)
      assert.equal(before, F.read(fx[name]))
    end
  end)
end)

describe("mlsh extract X.pte", function()
  it("writes each payload tree, the bytes the builder flattened, once per named-data key", function()
    local out_dir = dir .. "/out"
    local out, err, code = run("extract " .. F.q(fx.cmjr) .. " -o " .. F.q(out_dir))
    assert.equal(0, code, err)
    assert.matches("decode delegate 0: same payload as", out)
    local want = tree_files(X.package_tree{ root = "lowered_module_partition_0" })
    for path, bytes in pairs(want) do
      assert.equal(bytes, F.read(out_dir .. "/prefill_0/lowered_module_partition_0/" .. path))
    end
    assert.is_nil(io.open(out_dir .. "/decode_0"))
    -- the written package opens like any other
    local m = assert(mlsh.try_load(out_dir .. "/prefill_0/lowered_module_partition_0/model.mlpackage"))
    assert.equal(7, m.spec_version)
    m:close()
  end)

  it("refuses trees whose names escape the root and writes nothing", function()
    local out_dir = dir .. "/escape-out"
    local _, err, code = run("extract " .. F.q(fx.escape) .. " -o " .. F.q(out_dir))
    assert.equal(1, code)
    assert.matches("escapes its folder", err)
    assert.is_nil(io.open(dir .. "/escaped"))
    assert.is_nil(io.open(out_dir .. "/forward_0/lowered_module/metadata.json"))
  end)

  it("hands other models to the subgraph extractor, or says it is missing", function()
    local _, err, code = run("extract " .. F.q(fx.seg32 .. ".missing") .. " --from a --to b -o " .. F.q(dir .. "/g"))
    local has = pcall(require, "mlsh.cmd.extract_graph")
    if not has then
      assert.equal(2, code)
      assert.matches("no subgraph extractor", err)
    else
      assert.is_not.equal(0, code)
    end
  end)
end)

describe("mlsh check X.pte", function()
  it("reports graph breaks with the operators between the Core ML delegates", function()
    local out, err, code = run("check --format json " .. F.q(fx.breaks))
    assert.equal(0, code, err)
    local r = json.decode(out)
    assert.equal("pte", r.format)
    assert.equal(2, #r.delegates)
    local f = r.findings[1]
    assert.equal("pte-graph-break", f.rule)
    assert.same({ "aten::sigmoid.out", "aten::add.out" }, f.evidence.between)
    -- placement ran with the delegate's compute_units compile spec
    assert.equal("CPU_AND_NE", r.delegates[1].report.compute_units)
  end)

  it("fails a delegate whose opset or deployment spec is above --target", function()
    local out, err, code = run("check --target iOS15 " .. F.q(fx.seg32))
    assert.equal(1, code, err)
    assert.matches("pte%-target: forward delegate 0 uses opset CoreML6 %(spec 7 %(iOS16%)%)", out)
    assert.matches("Unknown opset 'CoreML6'", out)
    assert.matches("min_deployment_target spec 7 %(iOS16%), above the target iOS15", out)
    local _, _, ok = run("check --target iOS16 " .. F.q(fx.seg32))
    assert.equal(0, ok)
  end)

  it("flags compile specs that contradict the payload", function()
    local pkg = PB.flatten(X.package_tree())
    local path = dir .. "/contradict.pte"
    F.write(path, PB.pte{ header = 32, methods = { { name = "forward", delegates = { { data = pkg, specs = {
      { "compute_units", "all" }, { "min_deployment_target", "6" }, { "model_compute_precision", "float32" },
      { "model_type", "compiled_model" } } } } } } })
    local out, err, code = run("check --format json " .. F.q(path))
    assert.equal(1, code, err)
    local msgs = {}
    for _, f in ipairs(json.decode(out).findings) do msgs[#msgs + 1] = f.message end
    local all = table.concat(msgs, "\n")
    assert.matches("model_type=compiled_model but the payload holds an mlpackage", all)
    assert.matches("model_compute_precision=float32 but 2 op outputs of the payload are fp16", all)
    assert.matches("min_deployment_target spec 6 %(iOS15%) but the payload is a spec 7", all)
  end)
end)

describe("mlsh check X.pte output formats", function()
  it("gives SARIF with the program's findings and refuses markdown in one line", function()
    local out, err, code = run("check --format sarif " .. F.q(fx.breaks))
    assert.equal(0, code, err)
    local s = json.decode(out)
    local ids = {}
    for _, r in ipairs(s.runs[1].results) do ids[r.ruleId] = true end
    assert.is_true(ids["pte-graph-break"])
    out, err, code = run("check --format markdown " .. F.q(fx.breaks))
    assert.equal("", out)
    assert.equal(2, code)
    assert.matches("markdown covers one model", err)
  end)
end)

describe("--delegate", function()
  it("selects one Core ML model for weights and graph", function()
    local out, err, code = run("weights --json --delegate 1 " .. F.q(fx.breaks))
    assert.equal(0, code, err)
    assert.equal(1, #json.decode(out).weights)
    out, err, code = run("weights " .. F.q(fx.breaks))
    assert.equal("", out)
    assert.equal(1, code)
    assert.matches("2 Core ML delegates; choose one with %-%-delegate N %(0%.%.1%)", err)
    out, err, code = run("graph --delegate decode:0 " .. F.q(fx.cmjr))
    assert.equal(0, code, err)
    assert.matches("cmjr%.pte:decode/0", out)
  end)
end)

describe("mlsh run X.pte --delegate N", function()
  it("runs the Core ML payload in place and computes what the same package computes on disk", function()
    local spec, wb = F.mlprogram {}
    local plain = F.write_package(dir .. "/plain.mlpackage", spec, wb)
    local _, err, code = run("run " .. F.q(plain) .. " --random 7 -o " .. F.q(dir .. "/run-plain"))
    assert.equal(0, code, err)
    _, err, code = run("run " .. F.q(fx.seg32) .. " --delegate 0 --random 7 -o " .. F.q(dir .. "/run-pte"))
    assert.equal(0, code, err)
    local a, b = F.read(dir .. "/run-plain/y.npy"), F.read(dir .. "/run-pte/y.npy")
    assert.is_true(#a > 128)
    assert.equal(a, b)
  end)

  it("names the file and the missing delegate, exit 1", function()
    local out, err, code = run("run " .. F.q(fx.seg32) .. " --delegate 5 --random 7")
    assert.equal("", out)
    assert.equal(1, code)
    assert.matches("seg32%.pte", err)
  end)
end)

describe("mlsh diff X.pte MODEL", function()
  it("compares a .pte's Core ML delegate with the package it was made from: no difference", function()
    local spec, wb = F.mlprogram {}
    local plain = F.write_package(dir .. "/plain-diff.mlpackage", spec, wb)
    local out, err, code = run("diff --outputs --format json " .. F.q(fx.seg32) .. " " .. F.q(plain))
    assert.equal(0, code, err)
    local r = json.decode(out)
    assert.equal(0, r.differences)
    assert.equal("inf", r.sections.outputs.items[1].snr_db)
    out, err, code = run("diff --delegate 3 " .. F.q(fx.seg32) .. " " .. F.q(plain))
    assert.equal(2, code)
    assert.matches("seg32%.pte", err)
  end)
end)

describe("mlsh report X.pte", function()
  it("writes one tab per delegate: a whole report for each Core ML payload, a note for the others", function()
    local out_path = dir .. "/breaks.html"
    local out, err, code = run("report " .. F.q(fx.breaks) .. " -o " .. F.q(out_path))
    assert.equal(0, code, err)
    assert.equal("", out)
    local page = F.read(out_path)
    local labels = {}
    for l in page:gmatch('<button[^>]*data%-tab="tab%-%d+">([^<]*)</button>') do labels[#labels + 1] = l end
    -- the fixture's one method carries two Core ML delegates and one XNNPACK delegate (builder input)
    assert.same({ "forward / delegate 0 (CoreMLBackend)", "forward / delegate 1 (CoreMLBackend)",
                  "forward / delegate 2 (XnnpackBackend)" }, labels)
    local frames = 0
    for doc in page:gmatch('<iframe title="[^"]*" srcdoc="([^"]*)"') do
      frames = frames + 1
      assert.matches("&lt;script type=&quot;application/json&quot; id=&quot;mlsh%-data&quot;&gt;", doc)
    end
    assert.equal(2, frames)
    assert.matches("not a Core ML delegate", page)
    assert.is_nil(page:find("<link", 1, true))
  end)
end)
