-- mlsh report / mlsh diff --format html: one self-contained file (nothing fetched at view time),
-- the embedded data against independent paths (`mlsh info --json`'s op histogram, `mlsh check
-- --format json`'s findings), atomic writes and errors; then, in a real headless Chromium
-- (Debian's `chromium`, `make deps-test`), the DOM of reports of the bundled examples (one op
-- node per op, the findings count, no script errors), a 5,000-op model (repeats collapsed,
-- off-screen ops not drawn) and a 1280x800 screenshot holding the ANE, GPU and CPU legend colours
-- (decoded by tests/support/png.lua). Browser tests are pending when chromium is absent.
-- MLSH_UPDATE_SCREENSHOT=1 also writes the transformer example's screenshot to docs/report.png.
local json = require "mlsh.json"
local core = require "mlsh.core"
local F = require "fixtures"
local B = require "mlsh.builder"
local png = require "png"

local HOME = os.getenv("MLSH_HOME") or "."
local COLOURS = { ANE = { 0x1f, 0x9e, 0x5a }, GPU = { 0x2f, 0x6f, 0xd6 }, CPU = { 0xe5, 0x87, 0x1a } }

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local function chromium()
  -- MLSH_CHROMIUM=PATH picks a browser; MLSH_CHROMIUM=none runs the suite as on a machine without one
  local env = os.getenv("MLSH_CHROMIUM")
  if env == "none" then return nil end
  if env and env ~= "" then return env end
  local path = sh("command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null"):match("[^\n]+")
  return path
end

local CHROME_FLAGS = "--headless --no-sandbox --disable-gpu --no-first-run --disable-extensions "
  .. "--disable-dev-shm-usage --hide-scrollbars --user-data-dir="

local function dump_dom(bin, profile, file)
  return sh(string.format("timeout 120 %s %s%s --virtual-time-budget=3000 --dump-dom %s 2>/dev/null",
    F.q(bin), CHROME_FLAGS, F.q(profile), F.q("file://" .. file)))
end

-- The JSON a page embeds.
local function page_data(html)
  local s = html:match('<script type="application/json" id="mlsh%-data">(.-)</script>')
  assert(s, "no embedded data")
  return json.decode(s)
end

-- Ops the graph must show: every op but const/constexpr (weights), from `mlsh info --json`.
local function compute_ops(path)
  local out = F.run("info --json " .. F.q(path))
  local info = json.decode(out)
  local n = 0
  if info.model_type == "pipeline" then return nil end
  local hist = (type(info.op_histogram) == "table" and next(info.op_histogram)) and info.op_histogram or info.layer_histogram
  for t, c in pairs(hist) do
    if t ~= "const" and not t:match("^constexpr_") then n = n + c end
  end
  return n
end

local function findings_count(path)
  local out = F.run("check --format json " .. F.q(path)) -- report and check share the (calibrated) default
  return #json.decode(out).findings
end

-- A deep model: `blocks` repeats of linear -> relu -> add(skip) -> mul -> sigmoid (5 ops each).
local function deep_model(path, blocks)
  local L = B.layers
  local p = B.program { opset = "iOS16", precision = "fp16", seed = 9 }
  local f = p:func("main")
  local x = f:input("x", "fp32", { 1, 16 })
  for i = 1, blocks do
    local y = L.linear(f, x, { name = "b" .. i .. "_fc", out = 16 })
    y = L.relu(f, y)
    y = f:op("add", { x = y, y = x })
    y = f:op("mul", { x = y, y = y })
    x = f:op("sigmoid", { x = y })
  end
  f:output("y", x)
  p:save(path)
  return path
end

-- An ONNX model the CoreML EP cuts in two: MatMul | Erf, NonZero, Cast (CPU EP) | Relu.
local function onnx(path)
  local OB = require "onnx_builder"
  local b = OB.model { opset = 17 }
  b:input("x", "FLOAT", { 1, 16 })
  local w = {}
  for i = 1, 256 do w[i] = (i % 7) / 7 end
  b:init("w", "FLOAT", { 16, 16 }, w)
  b:node("MatMul", { "x", "w" }, { "h" }, nil, { name = "mm" })
  b:node("Erf", { "h" }, { "e" }, nil, { name = "erf" })
  b:node("NonZero", { "e" }, { "nz" }, nil, { name = "nz" })
  b:node("Cast", { "nz" }, { "c" }, { to = 1 }, { name = "cast" })
  b:node("Relu", { "c" }, { "y" }, nil, { name = "relu" })
  b:output("y", "FLOAT", { 2, "n" })
  return b:save(path)
end

describe("mlsh report", function()
  local dir, ex, deep, deep_html, onnx_model
  setup(function()
    dir = F.tmpdir()
    onnx_model = onnx(dir .. "/m.onnx")
    ex = dir .. "/examples"
    deep = deep_model(dir .. "/deep.mlpackage", 1000)
    deep_html = dir .. "/deep.html"
    local _, err, code = F.run("report " .. F.q(deep) .. " -o " .. F.q(deep_html))
    assert(code == 0, err)
    for _, r in ipairs({ "transformer_encoder", "small_models", "mobilenet_like" }) do
      local _, xerr, xcode = F.run(F.q(HOME .. "/examples/" .. r .. ".lua") .. " " .. F.q(ex))
      assert(xcode == 0, xerr)
    end
  end)
  teardown(function() core.fs.remove_tree(dir) end)

  local function report(model, out, extra)
    local o, err, code = F.run("report " .. F.q(model) .. " -o " .. F.q(out) .. " " .. (extra or ""))
    assert(code == 0, err)
    assert.equal("", o)
    return F.read(out)
  end

  describe("the file", function()
    it("is self-contained: no external resource, no web font", function()
      local html = report(ex .. "/transformer_encoder_lstm.mlpackage", dir .. "/t.html")
      assert.matches("^<!doctype html>", html)
      -- the only URLs outside the page's data block are the SVG namespace (the data may carry the
      -- evidence links of advisory findings: text shown as links, never fetched)
      local stripped = html:gsub('<script type="application/json" id="mlsh%-data">.-</script>', "")
      stripped = stripped:gsub("http://www%.w3%.org/2000/svg", "")
      assert.is_nil(stripped:find("https?://"))
      assert.is_nil(html:find("src%s*=%s*[\"']?https?:"))
      assert.is_nil(html:find("url%(%s*[\"']?https?:"))
      assert.is_nil(html:find("<link", 1, true))
      assert.is_nil(html:find("@import", 1, true))
      assert.is_nil(html:find("@font-face", 1, true))
      assert.is_nil(html:find("<script[^>]*src="))
      assert.is_nil(html:find("<img[^>]*src="))
    end)
    it("embeds one node per op and check's findings", function()
      for _, name in ipairs({ "transformer_encoder_lstm.mlpackage", "mobilenet_like_nn.mlmodel", "multi.mlpackage", "onnx" }) do
        local path = name == "onnx" and onnx_model or (ex .. "/" .. name)
        local d = page_data(report(path, dir .. "/r.html"))
        local n = 0
        for _, g in ipairs(d.graph.functions) do n = n + #g.nodes end
        assert.equal(compute_ops(path), n, name)
        assert.equal(findings_count(path), #d.findings, name)
      end
    end)
    it("colours ONNX nodes by CoreML EP partition", function()
      local d = page_data(report(onnx_model, dir .. "/o.html"))
      local want = json.decode((F.run("check --format json " .. F.q(onnx_model)))).ep
      assert.equal(#want.partitions, #d.ep.partitions)
      local on = 0
      for _, n in ipairs(d.graph.functions[1].nodes) do if n.d == "CoreML" then on = on + 1 end end
      assert.equal(want.supported_nodes, on)
      assert.equal("CoreML", d.graph.functions[1].nodes[1].d) -- MatMul
      assert.equal("CPU", d.graph.functions[1].nodes[3].d)    -- NonZero
    end)
    it("gives each weight a histogram whose counts add up to its values", function()
      local d = page_data(report(ex .. "/prog.mlpackage", dir .. "/p.html"))
      assert.is_true(#d.weights > 0)
      for _, w in ipairs(d.weights) do
        local sum = 0
        for _, c in ipairs(w.hist.counts) do sum = sum + c end
        assert.equal(w.count, sum)
      end
    end)
    it("shows SNR against --against ORIGINAL", function()
      local orig = ex .. "/mobilenet_like_good.mlpackage"
      local pal = dir .. "/pal.mlpackage"
      local _, err, code = F.run("compress " .. F.q(orig) .. " -o " .. F.q(pal) .. " --palettize 4 --quiet")
      assert(code == 0, err)
      local d = page_data(report(pal, dir .. "/pal.html", "--against " .. F.q(orig)))
      local with = 0
      for _, w in ipairs(d.weights) do
        if w.form:match("^palettized") then
          with = with + 1
          assert.is_number(w.snr)
          assert.is_true(w.snr > 15 and w.snr < 30)
        end
      end
      assert.is_true(with > 0)
    end)
    it("stays small for a 5,000-op model", function()
      local html = F.read(deep_html)
      local d = page_data(html)
      -- 1000 blocks of 5 ops, and the fp16 build's input and output casts
      assert.equal(5002, compute_ops(deep))
      assert.equal(5002, #d.graph.functions[1].nodes)
      assert.is_true(#html < 10 * 1024 * 1024, tostring(#html))
    end)
    it("replaces the output atomically and fails cleanly", function()
      local out = dir .. "/keep.html"
      F.write(out, "old")
      local cases = {
        { F.q(dir .. "/missing.mlpackage") .. " -o " .. F.q(out), "missing.mlpackage" },
        { F.q(ex .. "/prog.mlpackage"), "no output file" },
        { F.q(ex .. "/prog.mlpackage") .. " -o " .. F.q(dir .. "/no/such/dir/r.html"), "r.html" },
        { "--compute-units tpu " .. F.q(ex .. "/prog.mlpackage") .. " -o " .. F.q(out), "unknown compute units" },
        { "--bogus " .. F.q(ex .. "/prog.mlpackage") .. " -o " .. F.q(out), "unknown option" },
      }
      for _, c in ipairs(cases) do
        local o, err, code = F.run("report " .. c[1])
        assert.equal(2, code, c[1])
        assert.equal("", o)
        assert.matches(c[2], err)
      end
      assert.equal("old", F.read(out))
      report(ex .. "/prog.mlpackage", out)
      assert.matches("^<!doctype html>", F.read(out))
      assert.equal("", sh("ls " .. F.q(dir) .. " | grep -v '%.html$' | grep -i tmp || true"))
    end)
    it("mlsh diff --format html carries the sections and marks what moved", function()
      local a, b = ex .. "/transformer_encoder_good.mlpackage", ex .. "/transformer_encoder_fp32.mlpackage"
      local out, err, code = F.run("diff --format html -o " .. F.q(dir .. "/d.html") .. " " .. F.q(a) .. " " .. F.q(b))
      assert.equal(1, code, err)
      assert.equal("", out)
      local d = page_data(F.read(dir .. "/d.html"))
      local want = json.decode((F.run("diff --format json " .. F.q(a) .. " " .. F.q(b))))
      assert.equal(want.differences, d.diff.differences)
      assert.equal(#want.order, #d.diff.sections)
      local moved = 0
      for _ in pairs(d.diff.marked) do moved = moved + 1 end
      assert.is_true(moved >= #want.sections.placement.moved)
    end)
  end)

  describe("in headless Chromium", function()
    local bin = chromium()
    local profile
    local function need()
      if not bin then
        pending("chromium is not installed (make deps-test installs it)")
        return false
      end
      profile = profile or (dir .. "/chrome-profile")
      return true
    end

    local function check_dom(html_path)
      local dom = dump_dom(bin, profile, html_path)
      assert.matches('data%-ready="1"', dom, "the page did not finish: " .. dom:sub(1, 300))
      local errors = {}
      for level, msg in dom:gmatch('<div class="console%-line" data%-level="(%w+)">(.-)</div>') do
        if level == "error" then errors[#errors + 1] = msg end
      end
      assert.same({}, errors)
      return dom
    end

    it("draws one op node per op and every finding, without script errors", function()
      if not need() then return end
      for _, name in ipairs({ "transformer_encoder_lstm.mlpackage", "mobilenet_like_nn.mlmodel", "multi.mlpackage", "onnx" }) do
        local path = name == "onnx" and onnx_model or (ex .. "/" .. name)
        local html = dir .. "/" .. name .. ".html"
        report(path, html)
        local dom = check_dom(html)
        local nodes = select(2, dom:gsub('<g class="op[ "]', ""))
        assert.equal(compute_ops(path), nodes, name)
        local shown = select(2, dom:gsub('<div class="finding sev%-', ""))
        assert.equal(findings_count(path), shown, name)
        assert.equal(tostring(findings_count(path)), dom:match('<span id="findings%-count">(%d+)</span>'))
      end
    end)

    it("keeps a 5,000-op model usable: repeats collapsed, off-screen ops not drawn", function()
      if not need() then return end
      local dom = check_dom(deep_html)
      assert.equal(tostring(compute_ops(deep)), dom:match('data%-ops="(%d+)"'))
      local rendered = tonumber(dom:match('data%-rendered="(%d+)"'))
      assert.is_true(rendered > 0 and rendered < 1000, tostring(rendered))
      assert.matches('<g class="grp"', dom)
    end)

    it("renders the diff page", function()
      if not need() then return end
      local a, b = ex .. "/transformer_encoder_good.mlpackage", ex .. "/transformer_encoder_fp32.mlpackage"
      local html = dir .. "/diff.html"
      F.run("diff --format html -o " .. F.q(html) .. " " .. F.q(a) .. " " .. F.q(b))
      local dom = check_dom(html)
      assert.matches('class="diffsec"', dom)
      assert.matches('<g class="op moved"', dom)
    end)

    it("takes a 1280x800 screenshot holding the ANE, GPU and CPU legend colours", function()
      if not need() then return end
      -- a relative model path, so the page (and docs/report.png) shows no temporary folder
      local html = dir .. "/shot.html"
      sh(string.format("cd %s && %s report examples/transformer_encoder_lstm.mlpackage -o shot.html",
        F.q(dir), F.q(os.getenv("MLSH_BIN") or (HOME .. "/mlsh"))))
      assert.matches("^<!doctype html>", F.read(html))
      local shot = dir .. "/shot.png"
      sh(string.format("cd %s && timeout 120 %s %s%s --window-size=1280,800 --virtual-time-budget=3000 --screenshot=%s %s >/dev/null 2>&1",
        F.q(dir), F.q(bin), CHROME_FLAGS, F.q(profile), F.q(shot), F.q("file://" .. html)))
      local img = png.read(shot)
      assert.equal(1280, img.width)
      assert.equal(800, img.height)
      local counts, distinct = png.count_colours(img, { COLOURS.ANE, COLOURS.GPU, COLOURS.CPU }, 2)
      -- the legend swatches alone are 16x16 (rounded corners): at least 200 pixels each
      assert.is_true(counts[1] >= 200, "ANE " .. counts[1])
      assert.is_true(counts[2] >= 200, "GPU " .. counts[2])
      assert.is_true(counts[3] >= 200, "CPU " .. counts[3])
      assert.is_true(distinct > 50, "blank-looking screenshot: " .. distinct .. " colours")
      if os.getenv("MLSH_UPDATE_SCREENSHOT") == "1" then
        F.write(HOME .. "/docs/report.png", F.read(shot))
      end
    end)
  end)
end)
