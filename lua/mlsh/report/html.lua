-- mlsh.report.html — one self-contained HTML file (inline CSS, JS and SVG; no network, no CDN, no
-- web fonts) for a model (`mlsh report`) or a comparison (`mlsh diff --format html`).
--   local html = require "mlsh.report.html"
--   local page = html.report(m, { compute_units = "ALL", against = original_or_nil })
--   local page = html.diff(r, ma, mb)          -- r from mlsh.diff.compare(ma, mb)
-- The data (mlsh.report.html_data) is embedded as JSON in <script type="application/json"
-- id="mlsh-data">; the page script (mlsh.report.html_js) renders it. docs/report.md.
local mlsh = require "mlsh"
local json = mlsh.json
local data = require "mlsh.report.html_data"
local css = require "mlsh.report.html_css"
local js = require "mlsh.report.html_js"

local M = { DIFF_LINES = 500 }

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- JSON that is safe inside a <script> element ("</script" and "<!--" cannot appear).
local function embed(t)
  return (json.encode(t):gsub("</", "<\\/"):gsub("<!%-%-", "<\\u0021--"))
end
M.embed = embed

local BODY = [[
<div id="mlsh-console"></div>
<header><h1>%s</h1>
<div class="legend"><span><i class="dev-ANE"></i>ANE</span><span><i class="dev-GPU"></i>GPU</span><span><i class="dev-CPU"></i>CPU</span>%s</div>
</header>
<main>
<div class="side">
<section class="card"><h2>Summary</h2><div id="summary-kv" class="kv"></div></section>
<section class="card"><h2>Findings (<span id="findings-count">0</span>)</h2><div id="findings-filters" class="filters"></div><div id="findings-list" class="scroll"></div></section>
<section class="card"><h2>Selected op</h2><div id="detail" class="muted">click an op in the graph (drag to pan, wheel to zoom)</div></section>
<section class="card"><h2>Required spec</h2><div id="required"></div></section>
</div>
<div class="mainc">
<section class="card"><h2>Diff</h2><div id="diff"></div></section>
<section class="card"><h2>Segment timeline</h2><div id="timeline"></div></section>
<section class="card"><h2>Graph</h2>
<div class="tools"><input type="search" id="search" placeholder="search ops by name (Enter: next)"><span id="search-count" class="muted"></span>
<button id="zoom-in">+</button><button id="zoom-out">&minus;</button><button id="zoom-fit">fit</button><button id="expand-all">expand repeats</button></div>
<div id="graph-wrap"><svg id="graph" xmlns="http://www.w3.org/2000/svg"></svg></div></section>
<section class="card"><h2>Weights</h2><div style="display:grid;grid-template-columns:1fr 340px;gap:12px">
<div class="scroll"><table id="weights-table"></table></div><div id="histogram" class="muted">select a weight</div></div></section>
<section class="card"><h2>CoreML EP partitions</h2><div id="ep"></div></section>
</div>
</main>
]]

local function page(title, d)
  local extra = d.ep and '<span><i class="dev-CoreML"></i>CoreML EP</span>' or ""
  return table.concat({
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    "<title>", esc(title), "</title>\n<style>", css, "</style>\n<script>", js.CONSOLE, "</script></head>\n<body>\n",
    string.format(BODY, esc(title), extra),
    '<script type="application/json" id="mlsh-data">', embed(d), "</script>\n<script>", js.APP, "</script>\n</body></html>\n",
  })
end

function M.report(m, opts)
  local d = data.model(m, opts or {})
  d.kind = "report"
  return page("mlsh report: " .. tostring(m.path), d)
end

-- A container of several models (an ExecuTorch .pte: one tab per delegate). tabs = {{label =,
-- html = a page of M.report, or note = text for a delegate that is not Core ML}}. Each report stays
-- a whole page of its own, inline in an <iframe srcdoc> (no network, no file beside it).
local TAB_CSS = "body{margin:0;font:13px system-ui,sans-serif}nav{display:flex;gap:4px;padding:6px;background:#f2f4f7;"
  .. "border-bottom:1px solid #d0d5dd}nav button{font:inherit;padding:3px 10px;border:1px solid #d0d5dd;border-radius:4px;"
  .. "background:#fff;cursor:pointer}nav button.on{background:#1d2939;color:#fff}iframe{border:0;width:100%;"
  .. "height:calc(100vh - 40px)}.tab{display:none}.tab.on{display:block}.note{padding:16px}"
local TAB_JS = "document.querySelectorAll('nav button').forEach(function(b){b.onclick=function(){"
  .. "document.querySelectorAll('.on').forEach(function(x){x.classList.remove('on')});b.classList.add('on');"
  .. "document.getElementById(b.dataset.tab).classList.add('on')}})"

function M.tabs(title, tabs)
  local nav, body = {}, {}
  for i, t in ipairs(tabs) do
    local on = i == 1 and " on" or ""
    nav[#nav + 1] = string.format('<button class="%s" data-tab="tab-%d">%s</button>', on:sub(2), i, esc(t.label))
    if t.html then
      body[#body + 1] = string.format('<div class="tab%s" id="tab-%d"><iframe title="%s" srcdoc="%s"></iframe></div>',
        on, i, esc(t.label), esc(t.html))
    else
      body[#body + 1] = string.format('<div class="tab%s" id="tab-%d"><p class="note">%s</p></div>', on, i, esc(t.note))
    end
  end
  return table.concat({
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>', esc(title), "</title><style>", TAB_CSS,
    "</style></head>\n<body>\n<nav>", table.concat(nav), "</nav>\n", table.concat(body, "\n"),
    "\n<script>", TAB_JS, "</script>\n</body></html>\n",
  })
end

-- B's report with the diff on top: its sections, the ops of B that changed, moved or were added
-- outlined in the graph, and B's weights carrying the SNR against A.
function M.diff(r, ma, mb)
  local render = require "mlsh.diff.render"
  local snr = {}
  for _, w in ipairs(r.sections.weights.changed) do
    if w.snr_db then snr[#snr + 1] = { ["function"] = w["function"], name = w.name, snr_db = w.snr_db } end
  end
  local d = data.model(mb, { snr = snr })
  d.kind = "diff"
  local marked = json.object({})
  local ops = r.sections.ops
  for _, o in ipairs(ops.added) do marked[o.name] = true end
  for _, o in ipairs(ops.changed) do marked[o.name] = true end
  for _, o in ipairs(r.sections.placement and r.sections.placement.moved or {}) do marked[o.op] = true end
  local sections = json.array({})
  for i, id in ipairs(r.order) do
    local sec = r.sections[id]
    local lines = json.array({})
    for k, l in ipairs(render.LINES[id](sec)) do
      if k > M.DIFF_LINES then lines[#lines + 1] = "…" break end
      lines[#lines + 1] = l
    end
    sections[i] = { id = id, title = sec.title, changes = sec.changes, ignored = sec.ignored, lines = lines }
  end
  d.diff = { a = tostring(ma.path), b = tostring(mb.path), differences = r.differences, sections = sections, marked = marked }
  return page("mlsh diff: " .. tostring(ma.path) .. " → " .. tostring(mb.path), d)
end

return M
