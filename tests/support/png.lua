-- A PNG reader for the browser tests (8-bit RGB/RGBA, non-interlaced: what Chromium's
-- --screenshot writes), with its own inflate (RFC 1951: stored, fixed and dynamic Huffman blocks)
-- and zlib wrapper (RFC 1950, Adler-32 checked) and the five scanline filters (PNG spec §9).
--   local png = require "png"
--   local img = png.read(path)     -- {width, height, channels, pixel = function(x, y) -> r, g, b, a}
--   png.count_colours(img, {{r, g, b}, ...}, tolerance) -> {count per colour}, distinct colours
local P = {}

-- ---- inflate --------------------------------------------------------------------------------------
local LBASE = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 }
local LEXT = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 }
local DBASE = { 1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                4097, 6145, 8193, 12289, 16385, 24577 }
local DEXT = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 }
local CLORDER = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 }

-- A lookup table over the next `max` input bits (LSB first): entry = symbol * 16 + code length.
local function huffman(lengths, n)
  local max = 0
  for i = 0, n - 1 do if lengths[i] > max then max = lengths[i] end end
  local count, next_code = {}, {}
  for b = 0, 15 do count[b] = 0 end
  for i = 0, n - 1 do count[lengths[i]] = count[lengths[i]] + 1 end
  count[0] = 0
  local code = 0
  for b = 1, 15 do
    code = (code + count[b - 1]) << 1
    next_code[b] = code
  end
  local t = { max = max }
  for sym = 0, n - 1 do
    local len = lengths[sym]
    if len > 0 then
      local c = next_code[len]
      next_code[len] = c + 1
      local rev = 0
      for _ = 1, len do rev = (rev << 1) | (c & 1) c = c >> 1 end
      local entry = sym * 16 + len
      for fill = rev, (1 << max) - 1, 1 << len do t[fill] = entry end
    end
  end
  return t
end

function P.inflate(s, pos)
  local out, n = {}, 0
  local bitbuf, bitcnt = 0, 0
  local function need(k)
    while bitcnt < k do
      local b = s:byte(pos)
      if not b then error("png: deflate stream ends early") end
      pos = pos + 1
      bitbuf = bitbuf | (b << bitcnt)
      bitcnt = bitcnt + 8
    end
  end
  local function bits(k)
    need(k)
    local v = bitbuf & ((1 << k) - 1)
    bitbuf, bitcnt = bitbuf >> k, bitcnt - k
    return v
  end
  local function decode(t)
    -- near the end of the stream fewer than max bits may remain: pad with zeros
    while bitcnt < t.max do
      local b = s:byte(pos)
      if not b then break end
      pos = pos + 1
      bitbuf = bitbuf | (b << bitcnt)
      bitcnt = bitcnt + 8
    end
    local e = t[bitbuf & ((1 << t.max) - 1)]
    if not e then error("png: bad Huffman code") end
    local len = e & 15
    bitbuf, bitcnt = bitbuf >> len, bitcnt - len
    return e >> 4
  end
  local fixed_l, fixed_d
  repeat
    local final = bits(1)
    local kind = bits(2)
    if kind == 0 then
      bitbuf, bitcnt = 0, 0
      local len = s:byte(pos) | (s:byte(pos + 1) << 8)
      pos = pos + 4
      for i = 0, len - 1 do n = n + 1 out[n] = s:byte(pos + i) end
      pos = pos + len
    elseif kind == 1 or kind == 2 then
      local lt, dt
      if kind == 1 then
        if not fixed_l then
          local l = {}
          for i = 0, 143 do l[i] = 8 end
          for i = 144, 255 do l[i] = 9 end
          for i = 256, 279 do l[i] = 7 end
          for i = 280, 287 do l[i] = 8 end
          local d = {}
          for i = 0, 29 do d[i] = 5 end
          fixed_l, fixed_d = huffman(l, 288), huffman(d, 30)
        end
        lt, dt = fixed_l, fixed_d
      else
        local hlit, hdist, hclen = bits(5) + 257, bits(5) + 1, bits(4) + 4
        local cl = {}
        for i = 0, 18 do cl[i] = 0 end
        for i = 1, hclen do cl[CLORDER[i]] = bits(3) end
        local ct = huffman(cl, 19)
        local lens, i = {}, 0
        while i < hlit + hdist do
          local sym = decode(ct)
          if sym < 16 then lens[i] = sym i = i + 1
          else
            local rep, v
            if sym == 16 then rep, v = 3 + bits(2), lens[i - 1]
            elseif sym == 17 then rep, v = 3 + bits(3), 0
            else rep, v = 11 + bits(7), 0 end
            for _ = 1, rep do lens[i] = v i = i + 1 end
          end
        end
        local l, d = {}, {}
        for k = 0, hlit - 1 do l[k] = lens[k] end
        for k = 0, hdist - 1 do d[k] = lens[hlit + k] end
        lt, dt = huffman(l, hlit), huffman(d, hdist)
      end
      while true do
        local sym = decode(lt)
        if sym < 256 then n = n + 1 out[n] = sym
        elseif sym == 256 then break
        else
          sym = sym - 256
          local len = LBASE[sym] + bits(LEXT[sym])
          local ds = decode(dt) + 1
          local dist = DBASE[ds] + bits(DEXT[ds])
          local from = n - dist
          for k = 1, len do out[n + k] = out[from + k] end
          n = n + len
        end
      end
    else
      error("png: bad deflate block type")
    end
  until final == 1
  return out, n, pos
end

-- ---- PNG ----------------------------------------------------------------------------------------
local function u32(s, i) return (s:byte(i) << 24) | (s:byte(i + 1) << 16) | (s:byte(i + 2) << 8) | s:byte(i + 3) end

function P.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  if s:sub(1, 8) ~= "\137PNG\r\n\26\n" then error(path .. ": not a PNG file") end
  local pos, idat, w, h, depth, ctype, interlace = 9, {}, nil, nil, nil, nil, nil
  while pos <= #s do
    local len, typ = u32(s, pos), s:sub(pos + 4, pos + 7)
    local body = s:sub(pos + 8, pos + 7 + len)
    if typ == "IHDR" then
      w, h, depth, ctype, interlace = u32(body, 1), u32(body, 5), body:byte(9), body:byte(10), body:byte(13)
    elseif typ == "IDAT" then idat[#idat + 1] = body
    elseif typ == "IEND" then break end
    pos = pos + 12 + len
  end
  if depth ~= 8 or (ctype ~= 2 and ctype ~= 6) or interlace ~= 0 then
    error(string.format("%s: unsupported PNG (depth %s, colour type %s, interlace %s)", path, depth, ctype, interlace))
  end
  local z = table.concat(idat)
  local cmf, flg = z:byte(1), z:byte(2)
  if cmf & 15 ~= 8 or ((cmf << 8) | flg) % 31 ~= 0 then error(path .. ": bad zlib header") end
  local raw, n = P.inflate(z, 3)
  -- Adler-32 of the inflated bytes
  local a, b = 1, 0
  for i = 1, n do a = (a + raw[i]) % 65521 b = (b + a) % 65521 end
  if ((b << 16) | a) ~= u32(z, #z - 3) then error(path .. ": zlib checksum mismatch") end
  local ch = ctype == 6 and 4 or 3
  local stride = w * ch
  if n ~= h * (stride + 1) then error(path .. ": image data has the wrong size") end
  local px = {}
  local prev = 0 -- offset of the previous unfiltered row in px (nil row: zeros)
  for y = 0, h - 1 do
    local ft = raw[y * (stride + 1) + 1]
    local src = y * (stride + 1) + 1
    local row = y * stride
    for x = 1, stride do
      local v = raw[src + x]
      local left = x > ch and px[row + x - ch] or 0
      local up = y > 0 and px[prev + x] or 0
      local ul = (y > 0 and x > ch) and px[prev + x - ch] or 0
      if ft == 1 then v = v + left
      elseif ft == 2 then v = v + up
      elseif ft == 3 then v = v + ((left + up) >> 1)
      elseif ft == 4 then
        local p = left + up - ul
        local pa, pb, pc = math.abs(p - left), math.abs(p - up), math.abs(p - ul)
        v = v + ((pa <= pb and pa <= pc) and left or (pb <= pc and up or ul))
      elseif ft ~= 0 then error(path .. ": bad filter type " .. tostring(ft)) end
      px[row + x] = v & 255
    end
    prev = row
  end
  return { width = w, height = h, channels = ch, px = px,
           pixel = function(x, y)
             local i = (y * w + x) * ch
             return px[i + 1], px[i + 2], px[i + 3], ch == 4 and px[i + 4] or 255
           end }
end

-- How many pixels match each colour (within tolerance per channel), and how many distinct colours.
function P.count_colours(img, colours, tol)
  tol = tol or 2
  local counts, distinct, seen = {}, 0, {}
  for i = 1, #colours do counts[i] = 0 end
  local px, ch = img.px, img.channels
  for i = 0, img.width * img.height - 1 do
    local r, g, b = px[i * ch + 1], px[i * ch + 2], px[i * ch + 3]
    local key = (r << 16) | (g << 8) | b
    if not seen[key] then seen[key] = true distinct = distinct + 1 end
    for k, c in ipairs(colours) do
      if math.abs(r - c[1]) <= tol and math.abs(g - c[2]) <= tol and math.abs(b - c[3]) <= tol then counts[k] = counts[k] + 1 end
    end
  end
  return counts, distinct
end

return P
