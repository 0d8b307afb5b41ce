-- png_write.lua — a PNG writer for the image-input specs, independent of libpng: zlib stream of
-- stored deflate blocks (RFC 1950/1951, Adler-32), chunk CRC-32 (PNG spec §5.5), every colour
-- type and bit depth, filters None/Sub/Up per row, and Adam7 interlacing (PNG spec §8.2).
--   local W = require "png_write"
--   W.encode{width, height, color = 0|2|3|4|6, depth = 1|2|4|8|16, interlace = bool,
--            palette = {{r,g,b}...}, trns = {alpha per palette entry}, filter = 0|1|2,
--            pixel = function(x, y) -> sample, sample, ... (channels of the colour type)} -> bytes
--   W.write(path, opts)
local W = {}

local CRC = {}
for n = 0, 255 do
  local c = n
  for _ = 1, 8 do c = (c & 1) ~= 0 and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  CRC[n] = c
end

function W.crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = CRC[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end

local function adler32(s)
  local a, b = 1, 0
  for i = 1, #s do
    a = (a + s:byte(i)) % 65521
    b = (b + a) % 65521
  end
  return (b << 16) | a
end

-- zlib wrapper around stored (uncompressed) deflate blocks of at most 65535 bytes.
function W.zlib_stored(data)
  local out = { "\x78\x01" }
  local pos, n = 1, #data
  repeat
    local len = math.min(65535, n - pos + 1)
    local final = pos + len > n and 1 or 0
    out[#out + 1] = string.pack("<B I2 I2", final, len, len ~ 0xFFFF) .. data:sub(pos, pos + len - 1)
    pos = pos + len
  until pos > n
  out[#out + 1] = string.pack(">I4", adler32(data))
  return table.concat(out)
end

function W.chunk(kind, data)
  return string.pack(">I4", #data) .. kind .. data .. string.pack(">I4", W.crc32(kind .. data))
end

local CHANNELS = { [0] = 1, [2] = 3, [3] = 1, [4] = 2, [6] = 4 }

-- One scanline's raw bytes (no filter byte) for pixels x0, x0+dx, ... of row y.
local function raw_row(o, y, xs)
  local depth, bytes = o.depth, {}
  if depth < 8 then
    local acc, used = 0, 0
    for _, x in ipairs(xs) do
      acc, used = (acc << depth) | o.pixel(x, y), used + depth
      if used == 8 then bytes[#bytes + 1], acc, used = acc, 0, 0 end
    end
    if used > 0 then bytes[#bytes + 1] = acc << (8 - used) end
  else
    for _, x in ipairs(xs) do
      for _, v in ipairs({ o.pixel(x, y) }) do
        if depth == 16 then bytes[#bytes + 1], bytes[#bytes + 2] = v >> 8, v & 0xFF
        else bytes[#bytes + 1] = v end
      end
    end
  end
  return bytes
end

-- Filter type 0 (None), 1 (Sub) or 2 (Up) applied to a row; prev is the previous row's raw bytes.
local function filtered(bytes, prev, bpp, ft)
  local out = { string.char(ft) }
  for i, v in ipairs(bytes) do
    local p = 0
    if ft == 1 then p = bytes[i - bpp] or 0 elseif ft == 2 then p = prev and prev[i] or 0 end
    out[#out + 1] = string.char((v - p) & 0xFF)
  end
  return table.concat(out)
end

local ADAM7 = { { 0, 0, 8, 8 }, { 4, 0, 8, 8 }, { 0, 4, 4, 8 }, { 2, 0, 4, 4 }, { 0, 2, 2, 4 }, { 1, 0, 2, 2 }, { 0, 1, 1, 2 } }

function W.encode(o)
  local ch = CHANNELS[o.color]
  local bpp = math.max(1, ch * o.depth // 8)
  local passes = o.interlace and ADAM7 or { { 0, 0, 1, 1 } }
  local data = {}
  for _, p in ipairs(passes) do
    local xs = {}
    for x = p[1], o.width - 1, p[3] do xs[#xs + 1] = x end
    local prev
    if #xs > 0 then
      for y = p[2], o.height - 1, p[4] do
        local bytes = raw_row(o, y, xs)
        data[#data + 1] = filtered(bytes, prev, bpp, o.filter or (y % 3))
        prev = bytes
      end
    end
  end
  local out = { "\x89PNG\r\n\x1a\n",
    W.chunk("IHDR", string.pack(">I4 I4 B B B B B", o.width, o.height, o.depth, o.color, 0, 0, o.interlace and 1 or 0)) }
  if o.palette then
    local pl = {}
    for _, c in ipairs(o.palette) do pl[#pl + 1] = string.char(c[1], c[2], c[3]) end
    out[#out + 1] = W.chunk("PLTE", table.concat(pl))
  end
  if o.trns then
    local t = {}
    for _, a in ipairs(o.trns) do t[#t + 1] = string.char(a) end
    out[#out + 1] = W.chunk("tRNS", table.concat(t))
  end
  out[#out + 1] = W.chunk("IDAT", W.zlib_stored(table.concat(data)))
  out[#out + 1] = W.chunk("IEND", "")
  return table.concat(out)
end

function W.write(path, o)
  local f = assert(io.open(path, "wb"))
  f:write(W.encode(o))
  f:close()
end

return W
