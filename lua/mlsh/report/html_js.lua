-- mlsh.report.html_js — the inline scripts of the HTML report.
--   CONSOLE: runs first; copies console.error/console.warn and uncaught errors into
--            <div id="mlsh-console"> as <div class="console-line" data-level=…> (the browser tests read it).
--   APP:     reads the JSON in <script id="mlsh-data">, renders summary, findings (severity filters),
--            the device-coloured SVG graph (pan/zoom, search, click for details; repeated blocks
--            collapsed and off-screen nodes not drawn on big models), the segment timeline, the
--            sortable weights table with the selected tensor's histogram, required-spec reasons,
--            EP partitions (ONNX) and the diff sections (mlsh diff --format html); sets
--            <body data-ready="1" data-ops=N data-rendered=M> when done.
local M = {}

M.CONSOLE = [==[
(function(){
  var box = document.getElementById('mlsh-console');
  function log(level, args){
    var d = document.createElement('div');
    d.className = 'console-line'; d.setAttribute('data-level', level);
    d.textContent = Array.prototype.map.call(args, String).join(' ');
    box.appendChild(d);
  }
  window.addEventListener('error', function(e){ log('error', [e.message + ' (line ' + e.lineno + ')']); });
  var oe = console.error, ow = console.warn;
  console.error = function(){ log('error', arguments); if (oe) oe.apply(console, arguments); };
  console.warn = function(){ log('warn', arguments); if (ow) ow.apply(console, arguments); };
})();
]==]

M.APP = [==[
(function(){
'use strict';
var D = JSON.parse(document.getElementById('mlsh-data').textContent);
var SVGNS = 'http://www.w3.org/2000/svg';
var COLLAPSE_AT = 600, LAZY_AT = 1500, W = 150, H = 26, GX = 18, GY = 22;
function $(id){ return document.getElementById(id); }
function el(tag, attrs, text){
  var e = document.createElement(tag);
  for (var k in (attrs || {})) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function sv(tag, attrs){ var e = document.createElementNS(SVGNS, tag); for (var k in attrs) e.setAttribute(k, attrs[k]); return e; }
function fmtBytes(n){ if (n >= 1048576) return (n / 1048576).toFixed(2) + ' MB'; if (n >= 1024) return (n / 1024).toFixed(1) + ' KB'; return n + ' B'; }
function pct(x){ return (x * 100).toFixed(1) + '%'; }

// ---- summary ---------------------------------------------------------------------------------
function summary(){
  var m = D.model, s = D.summary, kv = $('summary-kv');
  function row(k, v){ kv.appendChild(el('b', {}, k)); kv.appendChild(el('span', {}, v)); }
  row('model', m.path); row('format', m.format + (m.model_type ? ' / ' + m.model_type : ''));
  if (m.spec_version) row('spec', m.spec_version + (m.os ? ' (' + m.os + ')' : ''));
  if (m.opsets) row('opsets', Object.keys(m.opsets).map(function(k){ return k + ' ' + m.opsets[k]; }).join(', '));
  row('inputs', m.inputs.map(function(f){ return f.name + ': ' + f.type; }).join('; ') || '-');
  row('outputs', m.outputs.map(function(f){ return f.name + ': ' + f.type; }).join('; ') || '-');
  row('ops', String(m.ops));
  row('weights', m.weights + ' (' + fmtBytes(m.weight_bytes) + ')');
  if (s.ane) {
    row('ANE coverage', pct(s.ane.ops) + ' of ops, ' + pct(s.ane.work) + ' of work');
    row('segments', s.segments + ', ' + s.transitions + ' device switch' + (s.transitions === 1 ? '' : 'es'));
    row('compute units', D.compute_units);
  }
  if (D.ep) row('CoreML EP', D.ep.partitions.length + ' partitions, ' + D.ep.supported_nodes + '/' + D.ep.nodes + ' nodes');
  if (D.required) row('required spec', D.required.version + (D.required.declared ? ' (declares ' + D.required.declared + ')' : ''));
  var f = s.findings; row('findings', f.error + ' errors, ' + f.warning + ' warnings, ' + f.info + ' info');
}

// ---- findings --------------------------------------------------------------------------------
function findings(){
  var list = $('findings-list'), filters = $('findings-filters'), counts = {error: 0, warning: 0, info: 0};
  D.findings.forEach(function(f){
    counts[f.severity] = (counts[f.severity] || 0) + 1;
    var d = el('div', {'class': 'finding sev-' + f.severity, 'data-severity': f.severity});
    var h = el('div'); h.appendChild(el('span', {'class': 'rule'}, f.rule));
    h.appendChild(el('span', {'class': 'badge'}, f.severity + (f.pattern ? ' · ' + f.pattern : '')));
    d.appendChild(h); d.appendChild(el('div', {}, f.message));
    if (f.fix) d.appendChild(el('div', {'class': 'fix'}, 'fix: ' + f.fix));
    var loc = f.location || {}, where = Object.keys(loc).map(function(k){ return k + '=' + loc[k]; }).join(' ');
    if (where) d.appendChild(el('div', {'class': 'muted'}, where));
    if (loc.op) d.addEventListener('click', function(){ graph.focusName(String(loc.op)); });
    list.appendChild(d);
  });
  ['error', 'warning', 'info'].forEach(function(sev){
    var l = el('label'), c = el('input', {type: 'checkbox', 'data-sev': sev});
    c.checked = true;
    c.addEventListener('change', function(){
      Array.prototype.forEach.call(list.querySelectorAll('.finding[data-severity=' + sev + ']'), function(x){ x.classList.toggle('hidden', !c.checked); });
    });
    l.appendChild(c); l.appendChild(document.createTextNode(' ' + sev + ' (' + counts[sev] + ')'));
    filters.appendChild(l);
  });
  $('findings-count').textContent = String(D.findings.length);
  if (!D.findings.length) list.appendChild(el('div', {'class': 'muted'}, 'no findings'));
}

// ---- graph -----------------------------------------------------------------------------------
function findRepeat(types){
  var n = types.length, best = null, maxL = Math.min(400, Math.floor(n / 2));
  for (var L = 3; L <= maxL; L++) {
    var run = 0;
    for (var i = 0; i + L < n; i++) {
      if (types[i] === types[i + L]) {
        run++;
        if (run >= L) {
          var reps = Math.floor(run / L) + 1, cover = reps * L;
          // positions i-run+1..i equal their +L twins: ops i-run+1 .. i+L repeat with period L
          if (!best || cover > best.cover) best = {L: L, start: i - run + 1, reps: reps, cover: cover};
        }
      } else run = 0;
    }
  }
  if (!best || best.reps < 3) return null;
  return best;
}

var graph = (function(){
  var fns = D.graph.functions, svg = $('graph'), vp, gEdges, gNodes, view = {x: 20, y: 20, s: 1};
  var V = [], byKey = {}, groups = [], rendered = {}, lazy = false, selected = null, hits = [], hitIx = 0;
  var moved = D.diff ? D.diff.marked : {};
  function build(){
    V = []; byKey = {};
    var offX = 0;
    fns.forEach(function(fn, fi){
      var nodes = fn.nodes, rep = new Array(nodes.length);
      var g = groups[fi];
      if (g === undefined) {
        g = null;
        if (nodes.length > COLLAPSE_AT) {
          var r = findRepeat(nodes.map(function(n){ return n.t; }));
          if (r) g = {from: r.start + r.L, to: r.start + r.reps * r.L, L: r.L, reps: r.reps, collapsed: true};
        }
        groups[fi] = g;
      }
      var vnodes = [], gv = null;
      nodes.forEach(function(n, i){
        if (g && g.collapsed && i >= g.from && i < g.to) {
          if (!gv) { gv = {group: g, fi: fi, i: i, preds: [], label: '\u00d7' + (g.reps - 1) + ' repeats of a ' + g.L + '-op block (click to expand)'}; vnodes.push(gv); }
          rep[i] = gv;
        } else {
          var v = {node: n, fi: fi, i: i, preds: []}; vnodes.push(v); rep[i] = v;
          byKey[fi + ':' + i] = v;
        }
      });
      nodes.forEach(function(n, i){
        n.p.forEach(function(p){ var a = rep[p], b = rep[i]; if (a && a !== b && b.preds.indexOf(a) < 0) b.preds.push(a); });
      });
      // layers by longest path (program order is topological), then order by predecessors' columns
      var layers = [];
      vnodes.forEach(function(v){
        var l = 0; v.preds.forEach(function(p){ if (p.layer + 1 > l) l = p.layer + 1; });
        v.layer = l; (layers[l] = layers[l] || []).push(v);
      });
      var width = 1;
      layers.forEach(function(row){
        row.forEach(function(v){ v.bary = v.preds.length ? v.preds.reduce(function(s, p){ return s + p.col; }, 0) / v.preds.length : 0; });
        row.sort(function(a, b){ return a.bary - b.bary; });
        row.forEach(function(v, k){ v.col = k - (row.length - 1) / 2; });
        if (row.length > width) width = row.length;
      });
      var half = (width - 1) / 2 * (W + GX);
      vnodes.forEach(function(v){ v.x = offX + half + v.col * (W + GX); v.y = 30 + v.layer * (H + GY); });
      fn.label = {x: offX, y: 12};
      offX += width * (W + GX) + 60;
      V = V.concat(vnodes);
    });
    lazy = V.length > LAZY_AT;
  }
  function nodeEl(v){
    var n = v.node, g;
    if (v.group) {
      g = sv('g', {'class': 'grp', transform: 'translate(' + v.x + ',' + v.y + ')'});
      g.appendChild(sv('rect', {width: W, height: H}));
      var t = sv('text', {x: 6, y: 17}); t.textContent = '\u00d7' + (v.group.reps - 1) + ' \u00b7 ' + v.group.L + ' ops each'; g.appendChild(t);
      var tt = sv('title', {}); tt.textContent = v.label; g.appendChild(tt);
      g.addEventListener('click', function(ev){ ev.stopPropagation(); v.group.collapsed = false; relayout(); });
      return g;
    }
    var cls = 'op' + (moved && moved[n.n] ? ' moved' : '') + (selected === v ? ' sel' : '') + (hits.indexOf(v) >= 0 ? ' hit' : '');
    g = sv('g', {'class': cls, 'data-name': n.n, 'data-device': n.d, transform: 'translate(' + v.x + ',' + v.y + ')'});
    g.appendChild(sv('rect', {width: W, height: H, 'class': 'dev-' + n.d}));
    var label = n.t + ' ' + n.n; if (label.length > 24) label = label.slice(0, 23) + '\u2026';
    var tx = sv('text', {x: 6, y: 17}); tx.textContent = label; g.appendChild(tx);
    g.addEventListener('click', function(ev){ ev.stopPropagation(); select(v); });
    return g;
  }
  function edgePath(a, b){
    var x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y, my = (y1 + y2) / 2;
    return sv('path', {'class': 'edge', d: 'M' + x1 + ',' + y1 + ' C' + x1 + ',' + my + ' ' + x2 + ',' + my + ' ' + x2 + ',' + y2});
  }
  function visible(v, box){ return v.x + W >= box.x0 && v.x <= box.x1 && v.y + H >= box.y0 && v.y <= box.y1; }
  function draw(){
    var r = svg.getBoundingClientRect(), m = 200;
    var box = {x0: (-view.x - m) / view.s, y0: (-view.y - m) / view.s, x1: (r.width - view.x + m) / view.s, y1: (r.height - view.y + m) / view.s};
    vp.setAttribute('transform', 'translate(' + view.x + ',' + view.y + ') scale(' + view.s + ')');
    if (!lazy && vp.getAttribute('data-drawn') === '1') return;
    while (gEdges.firstChild) gEdges.removeChild(gEdges.firstChild);
    while (gNodes.firstChild) gNodes.removeChild(gNodes.firstChild);
    rendered = 0;
    fns.forEach(function(fn){
      if (fns.length > 1) { var t = sv('text', {x: fn.label.x, y: fn.label.y, 'class': 'fnlabel'}); t.textContent = 'function ' + fn.name; gNodes.appendChild(t); }
    });
    V.forEach(function(v){
      var show = !lazy || visible(v, box);
      v.preds.forEach(function(p){ if (show || (lazy && visible(p, box))) gEdges.appendChild(edgePath(p, v)); });
      if (show) { gNodes.appendChild(nodeEl(v)); rendered++; }
    });
    vp.setAttribute('data-drawn', '1');
    document.body.setAttribute('data-rendered', String(rendered));
  }
  var pending = false;
  function schedule(){ if (pending) return; pending = true; requestAnimationFrame(function(){ pending = false; draw(); }); }
  function relayout(){ build(); vp.setAttribute('data-drawn', '0'); draw(); }
  function center(v){
    var r = svg.getBoundingClientRect();
    view.x = r.width / 2 - (v.x + W / 2) * view.s; view.y = r.height / 2 - (v.y + H / 2) * view.s;
    vp.setAttribute('data-drawn', '0'); schedule();
  }
  function select(v){
    selected = v; vp.setAttribute('data-drawn', '0'); draw();
    var n = v.node, fn = fns[v.fi], lines = [n.n, 'type: ' + n.t, 'function: ' + fn.name, 'device: ' + n.d, 'reason: ' + D.reasons[n.r]];
    if (n.x !== undefined && n.x !== null) lines.push('partition: ' + n.x);
    if (n.o.length) lines.push('outputs:\n  ' + n.o.join('\n  '));
    if (n.p.length) lines.push('inputs from: ' + n.p.map(function(i){ return fn.nodes[i].n; }).join(', '));
    if (n.fl !== undefined) lines.push('est. flops: ' + n.fl + ', bytes: ' + n.by);
    if (n.w.length) lines.push('weights:\n  ' + n.w.map(function(i){ var w = D.weights[i]; return w.name + ' ' + (w.dtype || '') + ' ' + w.shape + ' ' + w.form + ' ' + fmtBytes(w.bytes); }).join('\n  '));
    $('detail').textContent = lines.join('\n');
    if (n.w.length) weights.select(n.w[0]);
  }
  function expandFor(fi, i){ var g = groups[fi]; if (g && g.collapsed && i >= g.from && i < g.to) { g.collapsed = false; build(); } }
  function search(q){
    hits = []; hitIx = 0; q = q.trim().toLowerCase();
    if (q) fns.forEach(function(fn, fi){ fn.nodes.forEach(function(n, i){ if (n.n.toLowerCase().indexOf(q) >= 0) { expandFor(fi, i); } }); });
    if (q) V.forEach(function(v){ if (v.node && v.node.n.toLowerCase().indexOf(q) >= 0) hits.push(v); });
    $('search-count').textContent = q ? hits.length + ' match' + (hits.length === 1 ? '' : 'es') : '';
    vp.setAttribute('data-drawn', '0');
    if (hits.length) center(hits[0]); else schedule();
  }
  function init(){
    vp = sv('g', {id: 'viewport'}); gEdges = sv('g', {}); gNodes = sv('g', {});
    vp.appendChild(gEdges); vp.appendChild(gNodes); svg.appendChild(vp);
    build();
    var drag = null;
    svg.addEventListener('pointerdown', function(e){ drag = {x: e.clientX, y: e.clientY, vx: view.x, vy: view.y}; svg.setPointerCapture(e.pointerId); });
    svg.addEventListener('pointermove', function(e){ if (!drag) return; view.x = drag.vx + e.clientX - drag.x; view.y = drag.vy + e.clientY - drag.y; schedule(); });
    svg.addEventListener('pointerup', function(){ drag = null; });
    svg.addEventListener('wheel', function(e){
      e.preventDefault();
      var r = svg.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top, k = e.deltaY < 0 ? 1.15 : 1 / 1.15;
      var s = Math.max(0.05, Math.min(4, view.s * k)); k = s / view.s;
      view.x = px - (px - view.x) * k; view.y = py - (py - view.y) * k; view.s = s; schedule();
    }, {passive: false});
    $('zoom-in').addEventListener('click', function(){ view.s = Math.min(4, view.s * 1.25); schedule(); });
    $('zoom-out').addEventListener('click', function(){ view.s = Math.max(0.05, view.s / 1.25); schedule(); });
    $('zoom-fit').addEventListener('click', fit);
    $('expand-all').addEventListener('click', function(){ groups.forEach(function(g){ if (g) g.collapsed = false; }); relayout(); });
    var box = $('search');
    box.addEventListener('input', function(){ search(box.value); });
    box.addEventListener('keydown', function(e){ if (e.key === 'Enter' && hits.length) { hitIx = (hitIx + 1) % hits.length; center(hits[hitIx]); select(hits[hitIx]); } });
    fit();
    draw();
  }
  function fit(){
    var r = svg.getBoundingClientRect(), maxX = 1, maxY = 1;
    V.forEach(function(v){ if (v.x + W > maxX) maxX = v.x + W; if (v.y + H > maxY) maxY = v.y + H; });
    // fit the width; fit the height too unless that makes the ops unreadable (then pan down)
    view.s = Math.max(0.05, Math.min(1, (r.width - 40) / maxX));
    view.s = Math.max(Math.min(view.s, (r.height - 40) / maxY), Math.min(view.s, 0.6));
    view.x = Math.max(20, (r.width - maxX * view.s) / 2); view.y = 20; vp.setAttribute('data-drawn', '0'); schedule();
  }
  function focusName(name){ search(name); $('search').value = name; if (hits.length) select(hits[0]); }
  return {init: init, focusName: focusName, select: select, count: function(){ var c = 0; fns.forEach(function(f){ c += f.nodes.length; }); return c; }};
})();

// ---- timeline --------------------------------------------------------------------------------
function timeline(){
  var box = $('timeline'), fns = D.graph.functions, rowH = 34, width = 1000;
  var svg = sv('svg', {viewBox: '0 0 ' + width + ' ' + (fns.length * (rowH + 18) + 4), preserveAspectRatio: 'none'});
  fns.forEach(function(fn, k){
    var y = 4 + k * (rowH + 18), n = fn.nodes.length || 1, segs = [], cur = null;
    fn.nodes.forEach(function(o, i){
      if (cur && cur.d === o.d) cur.n++; else { cur = {d: o.d, first: i, n: 1}; segs.push(cur); }
    });
    var t = sv('text', {x: 0, y: y + 10, 'font-size': 11}); t.textContent = fn.name + ': ' + segs.length + ' segments, ' + Math.max(0, segs.length - 1) + ' switches'; svg.appendChild(t);
    segs.forEach(function(s, j){
      var x = s.first / n * width, w = s.n / n * width;
      var r = sv('rect', {x: x, y: y + 14, width: Math.max(w, 1), height: rowH - 14, 'class': 'band dev-' + s.d});
      var tt = sv('title', {}); tt.textContent = s.d + ': ' + s.n + ' ops from ' + fn.nodes[s.first].n; r.appendChild(tt);
      r.addEventListener('click', function(){ graph.focusName(fn.nodes[s.first].n); });
      svg.appendChild(r);
      if (j > 0) svg.appendChild(sv('line', {x1: x, x2: x, y1: y + 11, y2: y + rowH + 2, 'class': 'switch'}));
    });
  });
  box.appendChild(svg);
}

// ---- weights ---------------------------------------------------------------------------------
var weights = (function(){
  var rows = D.weights.map(function(w, i){ return {w: w, i: i}; }), key = 'bytes', dir = -1, tbody, trs = [];
  var maxBytes = 1; D.weights.forEach(function(w){ if (w.bytes > maxBytes) maxBytes = w.bytes; });
  var COLS = [['name', 'name'], ['fn', 'function'], ['dtype', 'dtype'], ['shape', 'shape'], ['form', 'compression'], ['bytes', 'size'], ['ratio', 'ratio'], ['snr', 'SNR dB']];
  function val(w, k){ if (k === 'ratio') return w.bytes ? w.dense / w.bytes : 0; if (k === 'snr') return w.snr === 'inf' ? 1e9 : (w.snr === undefined ? -1e9 : w.snr); return w[k]; }
  function render(){
    rows.sort(function(a, b){ var x = val(a.w, key), y = val(b.w, key); if (x === y) return a.i - b.i; return (x < y ? -1 : 1) * dir; });
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    trs = [];
    rows.forEach(function(r){
      var w = r.w, tr = el('tr', {'data-ix': r.i});
      [w.name, w.fn, w.dtype || '', w.shape, w.form].forEach(function(v){ tr.appendChild(el('td', {}, v)); });
      var td = el('td', {}, fmtBytes(w.bytes)), b = el('div', {'class': 'bar'}); b.style.width = Math.max(1, w.bytes / maxBytes * 120) + 'px'; td.appendChild(b); tr.appendChild(td);
      tr.appendChild(el('td', {}, w.bytes ? (w.dense / w.bytes).toFixed(2) + '\u00d7' : '-'));
      var ts = el('td', {}, w.snr === undefined ? '-' : (w.snr === 'inf' ? 'inf' : w.snr.toFixed(1)));
      if (w.snr !== undefined) { var sb = el('div', {'class': 'bar snr' + (w.snr !== 'inf' && w.snr < 30 ? ' low' : '')}); sb.style.width = Math.max(1, Math.min(60, w.snr === 'inf' ? 60 : w.snr) * 2) + 'px'; ts.appendChild(sb); }
      tr.appendChild(ts);
      tr.addEventListener('click', function(){ select(r.i); });
      tbody.appendChild(tr); trs[r.i] = tr;
    });
  }
  function select(i){
    trs.forEach(function(t){ if (t) t.classList.remove('sel'); });
    if (trs[i]) trs[i].classList.add('sel');
    histogram(D.weights[i]);
  }
  function histogram(w){
    var box = $('histogram'); while (box.firstChild) box.removeChild(box.firstChild);
    box.appendChild(el('div', {}, w.name + ' \u2014 ' + w.form + ', ' + w.count + ' values'));
    var h = w.hist; if (!h) { box.appendChild(el('div', {'class': 'muted'}, 'values not readable')); return; }
    var wd = 320, ht = 120, max = Math.max.apply(null, h.counts) || 1, bw = wd / h.counts.length;
    var svg = sv('svg', {width: wd, height: ht + 16, 'class': 'hist'});
    h.counts.forEach(function(c, k){ var bh = c / max * ht; svg.appendChild(sv('rect', {x: k * bw, y: ht - bh, width: Math.max(bw - 1, 1), height: bh, fill: '#475467'})); });
    var a = sv('text', {x: 0, y: ht + 13, 'font-size': 10}); a.textContent = h.min.toPrecision(3); svg.appendChild(a);
    var b = sv('text', {x: wd, y: ht + 13, 'font-size': 10, 'text-anchor': 'end'}); b.textContent = h.max.toPrecision(3); svg.appendChild(b);
    box.appendChild(svg);
    box.appendChild(el('div', {'class': 'muted'}, 'mean ' + h.mean.toPrecision(3) + ', std ' + h.std.toPrecision(3) + ', zeros ' + pct(h.sparsity || 0) + (h.sampled ? ', ' + h.sample + ' sampled values' : '')));
  }
  function init(){
    var table = $('weights-table'), thead = el('thead'), tr = el('tr');
    COLS.forEach(function(c){
      var th = el('th', {'data-key': c[0]}, c[1]);
      th.addEventListener('click', function(){ if (key === c[0]) dir = -dir; else { key = c[0]; dir = (c[0] === 'name' || c[0] === 'fn' || c[0] === 'form') ? 1 : -1; } mark(); render(); });
      tr.appendChild(th);
    });
    function mark(){ Array.prototype.forEach.call(tr.children, function(th){ th.className = th.getAttribute('data-key') === key ? (dir > 0 ? 'sorted-asc' : 'sorted-desc') : ''; }); }
    thead.appendChild(tr); table.appendChild(thead); tbody = el('tbody'); table.appendChild(tbody);
    mark(); render();
    if (D.weights.length) select(rows[0].i);
  }
  return {init: init, select: select};
})();

// ---- required spec, EP partitions, diff --------------------------------------------------------
function required(){
  var box = $('required'); if (!D.required) { box.parentNode.style.display = 'none'; return; }
  box.appendChild(el('div', {}, 'needs spec ' + D.required.version + (D.required.declared ? ', declares ' + D.required.declared : '')));
  var t = el('table'); D.required.reasons.forEach(function(r){ var tr = el('tr'); tr.appendChild(el('td', {}, String(r.spec))); tr.appendChild(el('td', {}, r.what)); t.appendChild(tr); });
  box.appendChild(t);
}
function partitions(){
  var box = $('ep'); if (!D.ep) { box.parentNode.style.display = 'none'; return; }
  box.appendChild(el('div', {}, D.ep.verdict || ''));
  var t = el('table'), h = el('tr'); ['partition', 'nodes', 'first', 'last', 'ops'].forEach(function(c){ h.appendChild(el('th', {}, c)); }); t.appendChild(h);
  D.ep.partitions.forEach(function(p){
    var tr = el('tr'); [p.id, p.size, p.first, p.last, Object.keys(p.ops).map(function(k){ return k + '\u00d7' + p.ops[k]; }).join(', ')].forEach(function(v){ tr.appendChild(el('td', {}, String(v))); });
    t.appendChild(tr);
  });
  box.appendChild(t);
}
function diff(){
  var box = $('diff'); if (!D.diff) { box.parentNode.style.display = 'none'; return; }
  box.appendChild(el('div', {}, D.diff.a + ' \u2192 ' + D.diff.b + ': ' + D.diff.differences + ' difference' + (D.diff.differences === 1 ? '' : 's')));
  D.diff.sections.forEach(function(s){
    var d = el('details', {'class': 'diffsec'}), sm = el('summary', {}, s.title);
    sm.appendChild(el('span', {'class': 'badge' + (s.changes ? ' chg' : '')}, s.changes ? s.changes + ' change' + (s.changes === 1 ? '' : 's') + (s.ignored ? ' (ignored)' : '') : 'no change'));
    d.appendChild(sm);
    s.lines.forEach(function(l){ d.appendChild(el('div', {'class': 'line'}, l)); });
    if (s.changes) d.open = true;
    box.appendChild(d);
  });
}

function run(name, f){ try { f(); } catch (e) { console.error(name + ': ' + (e && e.stack || e)); } }
run('summary', summary); run('findings', findings); run('graph', graph.init); run('timeline', timeline);
run('weights', weights.init); run('required', required); run('partitions', partitions); run('diff', diff);
document.body.setAttribute('data-ops', String(graph.count()));
document.body.setAttribute('data-ready', '1');
})();
]==]

return M
