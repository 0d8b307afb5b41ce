-- mlsh.report.html_css — the inline stylesheet of the HTML report (system fonts only, no web fonts).
-- Device colours are part of the contract the browser test checks: ANE #1f9e5a, GPU #2f6fd6,
-- CPU #e5871a, CoreML EP #8a4fd1.
return [[
:root{--ane:#1f9e5a;--gpu:#2f6fd6;--cpu:#e5871a;--coreml:#8a4fd1;--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#667085;--line:#d9dde5}
*{box-sizing:border-box}
body{margin:0;font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;align-items:center;gap:16px;padding:8px 16px;background:#1d2330;color:#fff;position:sticky;top:0;z-index:5}
header h1{font-size:15px;margin:0;font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:55vw}
.legend{display:flex;gap:12px;margin-left:auto}
.legend span{display:inline-flex;align-items:center;gap:5px}
.legend i{display:inline-block;width:16px;height:16px;border-radius:3px}
.dev-ANE{fill:var(--ane);background:var(--ane)}.dev-GPU{fill:var(--gpu);background:var(--gpu)}
.dev-CPU{fill:var(--cpu);background:var(--cpu)}.dev-CoreML{fill:var(--coreml);background:var(--coreml)}
main{display:grid;grid-template-columns:340px 1fr;gap:12px;padding:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin-bottom:12px}
.card h2{font-size:13px;margin:0 0 8px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute)}
.kv{display:grid;grid-template-columns:auto 1fr;gap:2px 10px}.kv b{font-weight:600;color:var(--mute)}
.kv span{overflow-wrap:anywhere}
.filters label{margin-right:10px;white-space:nowrap}
.finding{border-left:4px solid var(--line);padding:4px 8px;margin:6px 0;background:#fafbfc}
.finding.sev-error{border-color:#d92d20}.finding.sev-warning{border-color:#f79009}.finding.sev-info{border-color:#2e90fa}
.finding .rule{font-weight:600}.finding .fix{color:#175cd3;margin-top:2px}
.finding.hidden{display:none}
#graph-wrap{position:relative;height:560px;border:1px solid var(--line);border-radius:6px;background:#fcfcfd;overflow:hidden}
#graph{width:100%;height:100%;cursor:grab;user-select:none}
#graph .op rect{stroke:#0003;stroke-width:1;rx:4}
#graph .op text{font-size:11px;fill:#fff;pointer-events:none}
#graph .op.sel rect{stroke:#111;stroke-width:3}
#graph .op.hit rect{stroke:#fdb022;stroke-width:4}
#graph .op.moved rect{stroke:#d92d20;stroke-width:3;stroke-dasharray:4 2}
#graph .grp rect{fill:#98a2b3;stroke:#475467;stroke-dasharray:5 3}
#graph .grp text{font-size:11px;fill:#fff}
#graph path.edge{stroke:#98a2b3;fill:none;stroke-width:1}
.tools{display:flex;gap:6px;align-items:center;margin-bottom:6px;flex-wrap:wrap}
.tools input[type=search]{width:220px;padding:3px 6px}
button{font:inherit;padding:2px 8px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
#detail{font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;max-height:260px;overflow:auto}
#timeline svg{width:100%;display:block}
#timeline .switch{stroke:#111;stroke-width:2}
table{border-collapse:collapse;width:100%}
th,td{padding:3px 6px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{cursor:pointer;background:#f2f4f7;position:sticky;top:0}
th.sorted-asc:after{content:" \25B2"}th.sorted-desc:after{content:" \25BC"}
tr.sel td{background:#eef4ff}
.bar{height:10px;background:#d0d5dd;border-radius:2px;min-width:1px}
.bar.snr{background:var(--ane)}.bar.snr.low{background:#d92d20}
.scroll{max-height:420px;overflow:auto}
.muted{color:var(--mute)}
#mlsh-console{display:none}
.tabs{display:flex;gap:4px;margin-bottom:8px}.tabs button.on{background:#1d2330;color:#fff}
.diffsec .line{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap}
.badge{display:inline-block;padding:0 6px;border-radius:8px;background:#eaecf0;margin-left:6px;font-size:11px}
.badge.chg{background:#fee4e2;color:#b42318}
]]
