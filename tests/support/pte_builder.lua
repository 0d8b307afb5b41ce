-- A tiny FlatBuffers writer and ExecuTorch .pte / inmemoryfs payload builder for tests, written
-- from the layout facts in docs/containers.md (no executorch code). Objects are laid out front to
-- back: every reference points forward, vtables sit just before their tables.
--   local PB = require "pte_builder"
--   local payload = PB.flatten{name = "lowered_module", children = {{name = "metadata.json", data = "{}"}, …}}
--   local bytes = PB.pte{header = 32, methods = {{name = "forward", delegates = {{data = payload}}}}}
local PB = {}

-- ---- FlatBuffers values ------------------------------------------------------------------------
local function tag(kind, v, extra) return { kind = kind, v = v, extra = extra } end
function PB.u8(v) return tag("u8", v) end
function PB.u32(v) return tag("u32", v) end
function PB.i32(v) return tag("i32", v) end
function PB.u64(v) return tag("u64", v) end
function PB.str(v) return tag("str", v) end
function PB.bytes(v, align) return tag("bytes", v, align or 16) end
function PB.vu32(v) return tag("vu32", v) end
function PB.vu64(v) return tag("vu64", v) end
function PB.vtab(v) return tag("vtab", v) end
function PB.vstr(v) return tag("vstr", v) end
-- PB.tab{[id] = value, …}: a table; ids are 0-based field ids, absent ids are absent fields
function PB.tab(fields) return tag("tab", fields) end

local SCALAR = { u8 = { 1, "<I1" }, u32 = { 4, "<I4" }, i32 = { 4, "<i4" }, u64 = { 8, "<I8" } }

local W = {}
W.__index = W
local function writer() return setmetatable({ parts = {}, pos = 0 }, W) end
function W:emit(s)
  local p = self.pos
  self.parts[#self.parts + 1] = s
  self.pos = self.pos + #s
  return p, #self.parts
end
function W:pad_to(mult, extra)
  extra = extra or 0
  local r = (self.pos + extra) % mult
  if r ~= 0 then self:emit(string.rep("\0", mult - r)) end
end
function W:patch(idx, slotpos, target) self.parts[idx] = string.pack("<I4", target - slotpos) end
function W:bytes() return table.concat(self.parts) end

local write_obj
local function write_table(w, fields)
  local ids, max = {}, -1
  for id in pairs(fields) do ids[#ids + 1] = id; if id > max then max = id end end
  table.sort(ids)
  -- inline layout: soffset, then scalars (8-byte first) and 4-byte reference slots
  local layout, off = {}, 4
  table.sort(ids, function(a, b)
    local sa = SCALAR[fields[a].kind] and SCALAR[fields[a].kind][1] or 4
    local sb = SCALAR[fields[b].kind] and SCALAR[fields[b].kind][1] or 4
    if sa ~= sb then return sa > sb end
    return a < b
  end)
  for _, id in ipairs(ids) do
    local sz = SCALAR[fields[id].kind] and SCALAR[fields[id].kind][1] or 4
    if off % sz ~= 0 then off = off + (sz - off % sz) end
    layout[id] = off
    off = off + sz
  end
  local tsize = off
  if tsize % 4 ~= 0 then tsize = tsize + 4 - tsize % 4 end
  local vt = { string.pack("<I2I2", 4 + 2 * (max + 1), tsize) }
  for id = 0, max do vt[#vt + 1] = string.pack("<I2", layout[id] or 0) end
  local vts = table.concat(vt)
  w:pad_to(8, #vts) -- the table itself 8-aligned
  local vtpos = w:emit(vts)
  local tpos = w.pos
  local buf = string.pack("<i4", tpos - vtpos) .. string.rep("\0", tsize - 4)
  local refs = {}
  for _, id in ipairs(ids) do
    local f = fields[id]
    local o = layout[id]
    if SCALAR[f.kind] then
      local s = string.pack(SCALAR[f.kind][2], f.v)
      buf = buf:sub(1, o) .. s .. buf:sub(o + #s + 1)
    else
      refs[#refs + 1] = { id = id, o = o, f = f }
    end
  end
  -- emit the table in pieces so reference slots can be patched
  local cur = 0
  table.sort(refs, function(a, b) return a.o < b.o end)
  for _, r in ipairs(refs) do
    if r.o > cur then w:emit(buf:sub(cur + 1, r.o)) end
    local sp, si = w:emit("\0\0\0\0")
    r.slot, r.idx = sp, si
    cur = r.o + 4
  end
  if cur < tsize then w:emit(buf:sub(cur + 1, tsize)) end
  for _, r in ipairs(refs) do
    local target = write_obj(w, r.f)
    w:patch(r.idx, r.slot, target)
  end
  return tpos
end

function write_obj(w, o)
  local k = o.kind
  if k == "tab" then return write_table(w, o.v)
  elseif k == "str" then
    w:pad_to(4)
    return (w:emit(string.pack("<I4", #o.v) .. o.v .. "\0"))
  elseif k == "bytes" then
    w:pad_to(o.extra, 4)
    return (w:emit(string.pack("<I4", #o.v) .. o.v))
  elseif k == "vu32" or k == "vu64" then
    local fmt = k == "vu32" and "<I4" or "<I8"
    w:pad_to(k == "vu32" and 4 or 8, 4)
    local t = { string.pack("<I4", #o.v) }
    for _, x in ipairs(o.v) do t[#t + 1] = string.pack(fmt, x) end
    return (w:emit(table.concat(t)))
  elseif k == "vtab" or k == "vstr" then
    w:pad_to(4)
    local start = w:emit(string.pack("<I4", #o.v))
    local slots = {}
    for i = 1, #o.v do
      local sp, si = w:emit("\0\0\0\0")
      slots[i] = { sp, si }
    end
    for i, item in ipairs(o.v) do
      local target = write_obj(w, k == "vtab" and item or PB.str(item))
      w:patch(slots[i][2], slots[i][1], target)
    end
    return start
  end
  error("pte_builder: cannot write " .. tostring(k))
end

-- A whole flatbuffer: root offset, identifier, optional reserved header bytes, then the root.
function PB.finish(root, ident, reserve)
  local w = writer()
  local _, ri = w:emit("\0\0\0\0")
  w:emit(ident)
  if reserve and reserve > 0 then w:emit(string.rep("\0", reserve)) end
  local rpos = write_obj(w, root)
  w.parts[ri] = string.pack("<I4", rpos)
  return w:bytes()
end

-- ---- inmemoryfs payloads ------------------------------------------------------------------------
local function jstr(s) return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"' end

-- tree: {name=, children={…}} for folders, {name=, data=} for files. opts.align (default 1),
-- opts.base (the offset the alignment is relative to, as the >1 GiB path), opts.trailing (NULs).
function PB.flatten(tree, opts)
  opts = opts or {}
  local align, base = opts.align or 1, opts.base or 0
  local nodes, data, pos = {}, {}, 0
  local function visit(n)
    local kids = {}
    for _, c in ipairs(n.children or {}) do kids[#kids + 1] = { c.name, visit(c) } end
    local rec = { name = n.name, kind = n.children and 1 or 0, offset = 0, size = 0, children = kids }
    if not n.children then
      local start = pos
      if align > 1 then start = pos + (align - (base + pos) % align) % align end
      data[#data + 1] = string.rep("\0", start - pos) .. n.data
      rec.offset, rec.size = start, #n.data
      pos = start + #n.data
    end
    nodes[#nodes + 1] = rec
    return #nodes - 1
  end
  visit(tree)
  local parts = {}
  for _, r in ipairs(nodes) do
    table.sort(r.children, function(a, b) return a[1] < b[1] end)
    local ch = {}
    for _, c in ipairs(r.children) do ch[#ch + 1] = jstr(c[1]) .. ":" .. c[2] end
    parts[#parts + 1] = string.format('{"children":{%s},"dataRegion":{"offset":%d,"size":%d},"kind":%d,"name":%s}',
      table.concat(ch, ","), r.offset, r.size, r.kind, jstr(r.name))
  end
  local json = '{"nodes":[' .. table.concat(parts, ",") .. "]}"
  if opts.json then json = opts.json(json) end
  local pad = ""
  if align > 1 then pad = string.rep("\0", (align - (base + pos) % align) % align) end
  return table.concat(data) .. pad .. json:reverse() .. string.rep("\0", opts.trailing or 0), nodes
end

-- ---- .pte programs --------------------------------------------------------------------------------
local function align_up(n, a) return n % a == 0 and n or n + a - n % a end

-- spec = {header = nil|24|32, segment_alignment = 128, methods = {{name, inputs, outputs, values,
--   operators = {{name, overload}}, chain = {{"kernel", i} | {"delegate", i}}, delegates = {{id, data,
--   location = "inline"|"segment", specs = {{key, value}}}}}}, named = {{key, data}}, version}
-- Identical segment blobs are stored once (as executorch does). Returns the file bytes; with
-- spec.gap (bytes of hole before the segments) a list of {offset, bytes} pieces to write sparse.
function PB.pte(spec)
  local seg_align = spec.segment_alignment or 128
  local segs, seg_index, inline = {}, {}, {}
  local function add_segment(data)
    if seg_index[data] then return seg_index[data] end
    segs[#segs + 1] = data
    seg_index[data] = #segs - 1
    return #segs - 1
  end
  if spec.constant_segment ~= false and spec.header then add_segment("") end
  local plans = {}
  for _, m in ipairs(spec.methods) do
    local dels = {}
    for _, d in ipairs(m.delegates or {}) do
      local loc, idx = d.location or (spec.header and "segment" or "inline")
      if loc == "segment" then idx = add_segment(d.data) else inline[#inline + 1] = PB.tab{ [0] = PB.bytes(d.data) }; idx = #inline - 1 end
      local specs = {}
      for _, s in ipairs(d.specs or {}) do specs[#specs + 1] = PB.tab{ [0] = PB.str(s[1]), [1] = PB.bytes(s[2], 1) } end
      local ref = {}
      if loc == "segment" then ref[0] = PB.u8(1) end
      if idx ~= 0 then ref[1] = PB.u32(idx) end
      dels[#dels + 1] = PB.tab{ [0] = PB.str(d.id or "CoreMLBackend"), [1] = PB.tab(ref), [2] = PB.vtab(specs) }
    end
    local ops, instrs, values = {}, {}, {}
    for _, o in ipairs(m.operators or {}) do ops[#ops + 1] = PB.tab{ [0] = PB.str(o[1]), [1] = PB.str(o[2] or "") } end
    for _, ins in ipairs(m.chain or {}) do
      local kind = ins[1] == "kernel" and 1 or 2
      local args = {}
      if ins[2] ~= 0 then args[0] = PB.i32(ins[2]) end
      instrs[#instrs + 1] = PB.tab{ [0] = PB.u8(kind), [1] = PB.tab(args) }
    end
    for _, vt in ipairs(m.values or { 5, 5 }) do values[#values + 1] = PB.tab{ [0] = PB.u8(vt), [1] = PB.tab{} } end
    plans[#plans + 1] = PB.tab{
      [0] = PB.str(m.name), [2] = PB.vtab(values), [3] = PB.vu32(m.inputs or { 0 }), [4] = PB.vu32(m.outputs or { 1 }),
      [5] = PB.vtab{ PB.tab{ [2] = PB.vtab(instrs) } }, [6] = PB.vtab(ops), [7] = PB.vtab(dels),
    }
  end
  local named = {}
  for _, nd in ipairs(spec.named or {}) do
    named[#named + 1] = PB.tab{ [0] = PB.str(nd[1]), [1] = PB.u32(add_segment(nd[2])) }
  end
  -- segment offsets relative to the segment base
  local seg_tabs, offs, cur = {}, {}, 0
  for i, s in ipairs(segs) do
    cur = align_up(cur, seg_align)
    offs[i] = cur
    local f = {}
    if cur ~= 0 then f[0] = PB.u64(cur) end
    if #s ~= 0 then f[1] = PB.u64(#s) end
    seg_tabs[i] = PB.tab(f)
    cur = cur + #s
  end
  local root = { [1] = PB.vtab(plans), [3] = PB.vtab(inline), [4] = PB.vtab(seg_tabs), [7] = PB.vtab(named) }
  if spec.version then root[0] = PB.u32(spec.version) end
  if spec.root_extra then spec.root_extra(root) end
  local fb = PB.finish(PB.tab(root), "ET12", spec.header and 32 or 0)
  if not spec.header then return fb end
  local program_size = #fb
  local base = align_up(program_size, seg_align) + (spec.gap or 0)
  local hdr = "eh00" .. string.pack("<I4I8I8", spec.header, program_size, base)
  if spec.header >= 32 then hdr = hdr .. string.pack("<I8", cur) end
  hdr = hdr .. string.rep("\0", 32 - #hdr)
  local head = fb:sub(1, 8) .. hdr .. fb:sub(41)
  if spec.gap then -- sparse: {offset, bytes} pieces for a writer that seeks over the gap
    local parts = { { 0, head } }
    for i, s in ipairs(segs) do parts[#parts + 1] = { base + offs[i], s } end
    return parts
  end
  local body = { head, string.rep("\0", base - program_size) }
  local p = base
  for i, s in ipairs(segs) do
    body[#body + 1] = string.rep("\0", base + offs[i] - p)
    body[#body + 1] = s
    p = base + offs[i] + #s
  end
  return table.concat(body)
end

-- A bundled program (.bpte): BP08 with the program in field 2 (32-aligned).
function PB.bpte(program) return PB.finish(PB.tab{ [0] = PB.u32(0), [2] = PB.bytes(program, 32) }, "BP08") end

-- The CMJR reference executorch stores in each method's processed blob for shared payloads.
function PB.cmjr(key, fn)
  return "CMJR" .. string.format('{"version": 1, "key": %s, "functionName": %s}', jstr(key), jstr(fn))
end

return PB
