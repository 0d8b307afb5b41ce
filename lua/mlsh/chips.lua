-- mlsh.chips — Neural Engine generations (chip families) and the device names that map onto them.
--
--   local chips = require "mlsh.chips"
--   chips.resolve("A15") / ("M2") / ("iPhone14,2") / ("A17 Pro") / ("M1 Max") / ("intel")
--       -> {family = "A15", label = "A15/M3", chip = "A15", device = "iPhone14,2"?, ane = true, note?}
--        | nil, message (unknown name; the message lists what is accepted)
--   chips.FAMILIES      = {"A13", "A14", "A15", "A16"}  (oldest first; "none" = no Neural Engine)
--   chips.label(f)      -> "A13/M1", "A14/M2", "A15/M3", "A16+/M4-M5", "none (no Neural Engine)"
--   chips.range(list)   -> "A15+", "A13-A14", "A14", "A13, A16+": a set of families as text
--
-- Families follow the per-generation ladder of sbryngelson/ANEForge (docs/op-catalog.md: m1 = A13,
-- m2 = A14, m3 = A15, m4/m5 = A16/A17). A16, A17 (Pro), A18 (Pro), A19 and M4, M5 share the newest
-- family. "none": Intel Macs and simulators have no Neural Engine; the A11's is not used by Core ML
-- (hollance/neural-engine docs/supported-devices.md). A12 has no per-chip data: it maps to A13, the
-- closest generation with data, and says so in `note`.
local M = {}

M.FAMILIES = { "A13", "A14", "A15", "A16" }
local LABELS = { A13 = "A13/M1", A14 = "A14/M2", A15 = "A15/M3", A16 = "A16+/M4-M5", none = "none (no Neural Engine)" }
local INDEX = { A13 = 1, A14 = 2, A15 = 3, A16 = 4 }
M.INDEX = INDEX

-- chip -> family
local CHIP_FAMILY = {
  A13 = "A13", M1 = "A13", A14 = "A14", M2 = "A14", A15 = "A15", M3 = "A15",
  A16 = "A16", A17 = "A16", ["A17 PRO"] = "A16", A18 = "A16", ["A18 PRO"] = "A16", A19 = "A16",
  ["A19 PRO"] = "A16", M4 = "A16", M5 = "A16",
  A12 = "A13", A11 = "none", A10 = "none", INTEL = "none", X86_64 = "none", SIMULATOR = "none", NONE = "none",
}
local CHIP_NOTES = {
  A12 = "no per-chip data for A12: the A13 facts are used as the closest generation",
  A11 = "Core ML does not use the A11 Neural Engine (hollance/neural-engine docs/supported-devices.md)",
  A10 = "no Neural Engine",
}

-- Device identifiers (as in utsname.machine / sysctl hw.model) -> chip. Public model list.
local DEVICES = {
  ["iPhone11,2"] = "A12", ["iPhone11,4"] = "A12", ["iPhone11,6"] = "A12", ["iPhone11,8"] = "A12",
  ["iPhone12,1"] = "A13", ["iPhone12,3"] = "A13", ["iPhone12,5"] = "A13", ["iPhone12,8"] = "A13",
  ["iPhone13,1"] = "A14", ["iPhone13,2"] = "A14", ["iPhone13,3"] = "A14", ["iPhone13,4"] = "A14",
  ["iPhone14,2"] = "A15", ["iPhone14,3"] = "A15", ["iPhone14,4"] = "A15", ["iPhone14,5"] = "A15",
  ["iPhone14,6"] = "A15", ["iPhone14,7"] = "A15", ["iPhone14,8"] = "A15",
  ["iPhone15,2"] = "A16", ["iPhone15,3"] = "A16", ["iPhone15,4"] = "A16", ["iPhone15,5"] = "A16",
  ["iPhone16,1"] = "A17 Pro", ["iPhone16,2"] = "A17 Pro",
  ["iPhone17,1"] = "A18 Pro", ["iPhone17,2"] = "A18 Pro", ["iPhone17,3"] = "A18", ["iPhone17,4"] = "A18",
  ["iPhone17,5"] = "A18",
  ["iPad12,1"] = "A13", ["iPad12,2"] = "A13", ["iPad13,1"] = "A14", ["iPad13,2"] = "A14",
  ["iPad13,4"] = "M1", ["iPad13,5"] = "M1", ["iPad13,6"] = "M1", ["iPad13,7"] = "M1", ["iPad13,8"] = "M1",
  ["iPad13,9"] = "M1", ["iPad13,10"] = "M1", ["iPad13,11"] = "M1", ["iPad13,16"] = "M1", ["iPad13,17"] = "M1",
  ["iPad13,18"] = "A14", ["iPad13,19"] = "A14", ["iPad14,1"] = "A15", ["iPad14,2"] = "A15",
  ["iPad14,3"] = "M2", ["iPad14,4"] = "M2", ["iPad14,5"] = "M2", ["iPad14,6"] = "M2",
  ["iPad16,3"] = "M4", ["iPad16,4"] = "M4", ["iPad16,5"] = "M4", ["iPad16,6"] = "M4",
  ["MacBookAir10,1"] = "M1", ["MacBookPro17,1"] = "M1", ["Macmini9,1"] = "M1", ["iMac21,1"] = "M1",
  ["iMac21,2"] = "M1", ["Mac14,2"] = "M2", ["Mac14,7"] = "M2", ["Mac14,3"] = "M2",
  ["x86_64"] = "INTEL", ["i386"] = "INTEL", ["arm64-simulator"] = "SIMULATOR",
}
M.DEVICES = DEVICES

function M.label(family) return LABELS[family] end

-- "m1 max" / "A17 Pro" / "apple m2 ultra" -> canonical chip key, or nil
local function chip_key(s)
  local k = s:upper():gsub("^APPLE%s+", ""):gsub("%s+", " "):gsub("^%s+", ""):gsub("%s+$", "")
  if CHIP_FAMILY[k] then return k end
  -- M-series variants share their base chip's Neural Engine generation
  local base = k:match("^(M%d+) ?PRO$") or k:match("^(M%d+) ?MAX$") or k:match("^(M%d+) ?ULTRA$")
    or k:match("^(A%d+)X$") or k:match("^(A%d+)Z$") or k:match("^(A%d+) BIONIC$")
  if base and CHIP_FAMILY[base] then return base end
  return nil
end

function M.resolve(name)
  if type(name) ~= "string" or name == "" then return nil, "a device must be a chip (A15, M2) or a device name (iPhone14,2)" end
  local device, chip
  local d = DEVICES[name]
  if d then device, chip = name, d else chip = chip_key(name) end
  if not chip then
    return nil, string.format("unknown device '%s' (a chip A11..A19, M1..M5 with Pro/Max/Ultra, a device name such "
      .. "as iPhone14,2 or iPad13,4, or intel / simulator for no Neural Engine)", name)
  end
  chip = chip_key(chip) or chip
  local family = CHIP_FAMILY[chip]
  return { family = family, label = LABELS[family], chip = chip, device = device, ane = family ~= "none",
           note = CHIP_NOTES[chip] }
end

-- A set of families as text, oldest first: contiguous runs that reach the newest become "A15+".
function M.range(list)
  local have = {}
  for _, f in ipairs(list) do if INDEX[f] then have[INDEX[f]] = true end end
  local parts, i = {}, 1
  while i <= #M.FAMILIES do
    if have[i] then
      local j = i
      while have[j + 1] do j = j + 1 end
      if j == #M.FAMILIES and i < j then parts[#parts + 1] = M.FAMILIES[i] .. "+"
      elseif j == #M.FAMILIES and i == j then parts[#parts + 1] = M.FAMILIES[i] .. "+"
      elseif i == j then parts[#parts + 1] = M.FAMILIES[i]
      else parts[#parts + 1] = M.FAMILIES[i] .. "-" .. M.FAMILIES[j] end
      i = j + 1
    else
      i = i + 1
    end
  end
  return table.concat(parts, ", ")
end

return M
