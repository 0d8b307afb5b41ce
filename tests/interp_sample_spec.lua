-- interp_sample_spec.lua — crop_resize (iOS15/16 roi and iOS17 boxes), non_maximum_suppression
-- (iOS15 and iOS17 layouts), resample and affine in the interpreter. Every expected value is worked
-- out by hand in the comments (pixel reads, 2x2 averages, IoUs), never taken from the interpreter.
local B = require "mlsh.builder"
local IH = require "interp_helpers"

local tensor, build, run, close = IH.tensor, IH.build, IH.run, IH.close

local function run_err(path, inputs)
  local ok, err = pcall(run, path, inputs)
  assert.is_false(ok)
  return tostring(err)
end

-- two 4x5 images: image 0 holds 0..19, image 1 holds 100..119 (row-major)
local IMG = {}
for i = 0, 39 do IMG[i + 1] = i < 20 and i or 100 + i - 20 end
local function px(img, y, x) return IMG[img * 20 + y * 5 + x + 1] end

describe("crop_resize", function()
  it("iOS17 boxes with box_indices: ALIGN_CORNERS reads pixels, OFFSET_CORNERS averages 2x2 blocks", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 2, 1, 4, 5 })
      local boxes = f:const("boxes", B.tensor("fp32", { 0, 0, 3, 4, 1, 1, 2, 3 }, { 2, 4 }))
      local idx = f:const("idx", B.tensor("int32", { 1, 0 }))
      f:output("a", f:op("crop_resize", { x = x, boxes = boxes, box_indices = idx, target_height = 2, target_width = 3,
        sampling_mode = "ALIGN_CORNERS" }, { dtype = "fp32", shape = { 2, 1, 2, 3 }, check = false }))
      local cs = f:const("cs", B.tensor("fp32", { 1, 1, 2, 2 }, { 1, 4 })) -- centre (w 1, h 1), size 2x2
      f:output("o", f:op("crop_resize", { x = x, boxes = cs, target_height = 2, target_width = 2, sampling_mode = "OFFSET_CORNERS",
        box_coordinate_mode = "CENTER_SIZE_WIDTH_FIRST" }, { dtype = "fp32", shape = { 1, 1, 2, 2 }, check = false }))
    end)
    local outs = run(path, { x = tensor(IMG, { 2, 1, 4, 5 }) })
    -- box 0 on image 1: rows {0, 3}, columns {0, 2, 4}; box 1 on image 0: rows {1, 2}, columns {1, 2, 3}
    close(outs.a, { px(1, 0, 0), px(1, 0, 2), px(1, 0, 4), px(1, 3, 0), px(1, 3, 2), px(1, 3, 4),
      px(0, 1, 1), px(0, 1, 2), px(0, 1, 3), px(0, 2, 1), px(0, 2, 2), px(0, 2, 3) }, 1e-6)
    -- box [0, 2] x [0, 2], points 0.5 and 1.5: the mean of each 2x2 block of image 0
    local function blk(y, x) return (px(0, y, x) + px(0, y, x + 1) + px(0, y + 1, x) + px(0, y + 1, x + 1)) / 4 end
    close(outs.o, { blk(0, 0), blk(0, 1), blk(1, 0), blk(1, 1) }, 1e-6)
  end)

  it("iOS15/16 roi: an indexed normalized box, every image for a 4-value box, pad_value outside", function()
    local path = build("iOS16", function(f)
      local x = f:input("x", "fp32", { 2, 1, 4, 5 })
      local roi5 = f:const("roi5", B.tensor("fp32", { 1, 0, 0, 1, 1 }, { 1, 1, 5, 1, 1 }))
      f:output("n", f:op("crop_resize", { x = x, roi = roi5, target_height = 4, target_width = 5, normalized_coordinates = true,
        sampling_mode = "ALIGN_CORNERS" }, { dtype = "fp32", shape = { 1, 1, 1, 4, 5 }, check = false }))
      local roi4 = f:const("roi4", B.tensor("fp32", { -1, 0, 0, 0 }, { 1, 1, 4, 1, 1 }))
      f:output("p", f:op("crop_resize", { x = x, roi = roi4, target_height = 2, target_width = 1, pad_value = 7.0,
        sampling_mode = "STRICT_ALIGN_CORNERS" }, { dtype = "fp32", shape = { 1, 2, 1, 2, 1 }, check = false }))
    end)
    local outs = run(path, { x = tensor(IMG, { 2, 1, 4, 5 }) })
    local img1 = {}
    for i = 21, 40 do img1[#img1 + 1] = IMG[i] end
    close(outs.n, img1, 1e-6)                                 -- the whole of image 1
    close(outs.p, { 7, px(0, 0, 0), 7, px(1, 0, 0) }, 1e-6)  -- row -1 is outside: pad_value
  end)

  it("every sampling mode and box coordinate mode against a bilinear loop over the documented grid", function()
    local H, W, th, tw = 5, 6, 3, 4
    local X = IH.values(H * W, 9)
    local y0, x0, y1, x1 = 0.5, 1, 3.5, 4.5
    local forms = {
      CORNERS_HEIGHT_FIRST = { y0, x0, y1, x1 }, CORNERS_WIDTH_FIRST = { x0, y0, x1, y1 },
      CENTER_SIZE_HEIGHT_FIRST = { (y0 + y1) / 2, (x0 + x1) / 2, y1 - y0, x1 - x0 },
      CENTER_SIZE_WIDTH_FIRST = { (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0 },
    }
    local grids = {
      STRICT_ALIGN_CORNERS = function(s, e, i, n) return s + i * (e - s) / (n - 1) end,
      ALIGN_CORNERS = function(s, e, i, n) return s + i * (e - s) / (n - 1) end,
      DEFAULT = function(s, e, i, n) return s + i * (e - s) / n end,
      OFFSET_CORNERS = function(s, e, i, n) return s + (i + 0.5) * (e - s) / n end,
      UNALIGN_CORNERS = function(s, e, i, n) return s + (i + 0.5) * (e - s) / n - 0.5 end,
    }
    local function at(y, x) return X[y * W + x + 1] end
    local function bil(y, x)
      if y < 0 or y > H - 1 or x < 0 or x > W - 1 then return 0 end
      local fy, fx = math.floor(y), math.floor(x)
      local cy, cx = math.min(fy + 1, H - 1), math.min(fx + 1, W - 1)
      local wy, wx = y - fy, x - fx
      return (1 - wy) * ((1 - wx) * at(fy, fx) + wx * at(fy, cx)) + wy * ((1 - wx) * at(cy, fx) + wx * at(cy, cx))
    end
    local names = {}
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 1, H, W })
      for form, box in pairs(forms) do
        for mode in pairs(grids) do
          local name = (form .. "_" .. mode):lower()
          names[#names + 1] = { name, mode }
          f:output(name, f:op("crop_resize", { x = x, boxes = f:const(name .. "_b", B.tensor("fp32", box, { 1, 4 })), target_height = th,
            target_width = tw, box_coordinate_mode = form, sampling_mode = mode }, { dtype = "fp32", shape = { 1, 1, th, tw }, check = false }))
        end
      end
    end)
    local outs = run(path, { x = tensor(X, { 1, 1, H, W }) })
    for _, nm in ipairs(names) do
      local want, g = {}, grids[nm[2]]
      for i = 0, th - 1 do
        for j = 0, tw - 1 do want[#want + 1] = bil(g(y0, y1, i, th), g(x0, x1, j, tw)) end
      end
      local ok, err = pcall(close, outs[nm[1]], want, 1e-5)
      assert(ok, nm[1] .. ": " .. tostring(err))
    end
  end)

  it("refuses a box index past the batch", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 2, 1, 4, 5 })
      local boxes = f:const("boxes", B.tensor("fp32", { 0, 0, 1, 1 }, { 1, 4 }))
      f:output("a", f:op("crop_resize", { x = x, boxes = boxes, box_indices = f:const("bi", B.tensor("int32", { 5 })) },
        { dtype = "fp32", shape = { 1, 1, 1, 1 }, check = false }))
    end)
    assert.matches("box 0 refers to image 5 of 2", run_err(path, { x = tensor(IMG, { 2, 1, 4, 5 }) }))
  end)
end)

describe("non_maximum_suppression", function()
  -- boxes (cx, cy, w, h): 0 and 1 overlap with IoU 3.8 / 4.2 = 0.90; 2 is apart; 3 scores 0.1
  local BOX = { 0, 0, 2, 2, 0.1, 0, 2, 2, 5, 5, 2, 2, 10, 10, 1, 1 }
  local SC = { 0.9, 0.1, 0.2, 0.8, 0.7, 0.0, 0.1, 0.05 } -- [box][class]
  local function ios15(per_class, score_t)
    return build("iOS16", function(f)
      local bx = f:input("boxes", "fp32", { 1, 4, 4 })
      local sc = f:input("scores", "fp32", { 1, 4, 2 })
      local ob, os, oi, on = f:op("non_maximum_suppression", { boxes = bx, scores = sc, iou_threshold = 0.5, score_threshold = score_t,
        max_boxes = 3, per_class_suppression = per_class }, { outputs = { { dtype = "fp32", shape = { 1, 3, 4 } },
        { dtype = "fp32", shape = { 1, 3, 2 } }, { dtype = "int32", shape = { 1, 3 } }, { dtype = "int32", shape = { 1 } } }, check = false })
      f:output("b", ob)
      f:output("s", os)
      f:output("i", oi)
      f:output("n", on)
    end)
  end
  local inputs = { boxes = tensor(BOX, { 1, 4, 4 }), scores = tensor(SC, { 1, 4, 2 }) }

  it("iOS15: keeps boxes by score, drops overlaps and low scores, pads with zeros and -1", function()
    local outs = run(ios15(false, 0.3), inputs)
    close(outs.i, { 0, 2, -1 }, 0)
    close(outs.n, { 2 }, 0)
    close(outs.b, { 0, 0, 2, 2, 5, 5, 2, 2, 0, 0, 0, 0 }, 1e-6)
    close(outs.s, { 0.9, 0.1, 0.7, 0.0, 0, 0 }, 1e-6)
    -- per class: box 1's best class (1) differs from box 0's (0), so it survives
    local pc = run(ios15(true, 0.3), inputs)
    close(pc.i, { 0, 1, 2 }, 0)
    close(pc.n, { 3 }, 0)
    -- nothing above the threshold: the best box alone, as Core ML returns
    local none = run(ios15(false, 0.95), inputs)
    close(none.i, { 0, -1, -1 }, 0)
    close(none.n, { 1 }, 0)
  end)

  it("iOS17: boxes and classes on the last axis, no score threshold, no count", function()
    local BT, ST = {}, {}
    for k = 0, 3 do for b = 0, 3 do BT[k * 4 + b + 1] = BOX[b * 4 + k + 1] end end
    for k = 0, 1 do for b = 0, 3 do ST[k * 4 + b + 1] = SC[b * 2 + k + 1] end end
    local path = build("iOS17", function(f)
      local bx = f:input("boxes", "fp32", { 1, 4, 4 })
      local sc = f:input("scores", "fp32", { 1, 2, 4 })
      local ob, os, oi = f:op("non_maximum_suppression", { boxes = bx, scores = sc, iou_threshold = 0.5, max_boxes = 3 },
        { outputs = { { dtype = "fp32", shape = { 1, 4, 3 } }, { dtype = "fp32", shape = { 1, 2, 3 } }, { dtype = "int32", shape = { 1, 3 } } },
        check = false })
      f:output("b", ob)
      f:output("s", os)
      f:output("i", oi)
    end)
    local outs = run(path, { boxes = tensor(BT, { 1, 4, 4 }), scores = tensor(ST, { 1, 2, 4 }) })
    close(outs.i, { 0, 2, 3 }, 0) -- without a threshold box 3 (score 0.1, apart) is kept too
    close(outs.b, { 0, 5, 10, 0, 5, 10, 2, 2, 1, 2, 2, 1 }, 1e-6)
    close(outs.s, { 0.9, 0.7, 0.1, 0.1, 0.0, 0.05 }, 1e-6)
  end)
end)

describe("resample and affine", function()
  -- a 2x3 image: 1 2 3 / 4 5 6
  local X = { 1, 2, 3, 4, 5, 6 }
  it("resample: bilinear with every padding mode, nearest with normalized coordinates", function()
    -- (x, y) points: (0, 0) -> 1; (2, 1) -> 6; (0.5, 0.5) -> (1+2+4+5)/4 = 3; (-1, 0) -> padding
    local co = B.tensor("fp32", { 0, 0, 2, 1, 0.5, 0.5, -1, 0 }, { 1, 1, 4, 2 })
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 1, 2, 3 })
      local c = f:const("co", co)
      for _, m in ipairs({ "constant", "border", "reflection", "symmetric" }) do
        f:output(m, f:op("resample", { x = x, coordinates = c, sampling_mode = "bilinear", padding_mode = m, padding_value = 9.0,
          coordinates_mode = "unnormalized", align_corners = false }, { dtype = "fp32", shape = { 1, 1, 1, 4 }, check = false }))
      end
      local cn = f:const("cn", B.tensor("fp32", { 1, 1, -1, -1, 0, 1 }, { 1, 1, 3, 2 }))
      f:output("nearest", f:op("resample", { x = x, coordinates = cn, sampling_mode = "nearest", padding_mode = "constant", padding_value = 0.0,
        coordinates_mode = "normalized_minus_one_to_one", align_corners = true }, { dtype = "fp32", shape = { 1, 1, 1, 3 }, check = false }))
    end)
    local outs = run(path, { x = tensor(X, { 1, 1, 2, 3 }) })
    close(outs.constant, { 1, 6, 3, 9 }, 1e-6)
    close(outs.border, { 1, 6, 3, 1 }, 1e-6)     -- column -1 repeats column 0
    close(outs.reflection, { 1, 6, 3, 2 }, 1e-6) -- column -1 mirrors column 1
    close(outs.symmetric, { 1, 6, 3, 1 }, 1e-6)  -- column -1 mirrors column 0
    -- (1, 1) -> pixel (x 2, y 1) = 6; (-1, -1) -> (0, 0) = 1; (0, 1) -> (x 1, y 1) = 5
    close(outs.nearest, { 6, 1, 5 }, 1e-6)
  end)

  it("affine: the identity keeps the image, a0 = -1 mirrors it", function()
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 1, 2, 3 })
      for name, m in pairs({ id = { 1, 0, 0, 0, 1, 0 }, flip = { -1, 0, 0, 0, 1, 0 } }) do
        f:output(name, f:op("affine", { x = x, transform_matrix = f:const(name .. "_m", B.tensor("fp32", m, { 1, 6 })), output_height = 2,
          output_width = 3, sampling_mode = "bilinear", padding_mode = "constant", padding_value = 0.0,
          coordinates_mode = "normalized_minus_one_to_one", align_corners = true }, { dtype = "fp32", shape = { 1, 1, 2, 3 }, check = false }))
      end
    end)
    local outs = run(path, { x = tensor(X, { 1, 1, 2, 3 }) })
    close(outs.id, X, 1e-6)
    close(outs.flip, { 3, 2, 1, 6, 5, 4 }, 1e-6)
  end)
end)

describe("resize (iOS17)", function()
  it("resizes the last resized_dims dimensions, linear or nearest, per sampling mode", function()
    -- x [1, 2, 3]: rows 1 2 3 / 4 5 6; shape {0, 3, 5} with resized_dims 2 -> [1, 3, 5]
    local path = build("iOS17", function(f)
      local x = f:input("x", "fp32", { 1, 2, 3 })
      local sh = f:const("sh", B.tensor("int32", { 0, 3, 5 }))
      f:output("a", f:op("resize", { x = x, shape = sh, resized_dims = B.tensor("uint32", 2), sampling_mode = "STRICT_ALIGN_CORNERS" },
        { dtype = "fp32", shape = { 1, 3, 5 }, check = false }))
      f:output("n", f:op("resize", { x = x, shape = sh, resized_dims = B.tensor("uint32", 1), interpolation_mode = "NEAREST_NEIGHBOR" },
        { dtype = "fp32", shape = { 1, 2, 5 }, check = false }))
    end)
    local outs = run(path, { x = tensor({ 1, 2, 3, 4, 5, 6 }, { 1, 2, 3 }) })
    -- align corners: rows at 0, 0.5, 1; columns at 0, 0.5, 1, 1.5, 2
    close(outs.a, { 1, 1.5, 2, 2.5, 3, 2.5, 3, 3.5, 4, 4.5, 4, 4.5, 5, 5.5, 6 }, 1e-6)
    -- nearest, DEFAULT: column floor(i * 3 / 5) = 0, 0, 1, 1, 2
    close(outs.n, { 1, 1, 2, 2, 3, 4, 4, 5, 5, 6 }, 1e-6)
  end)
end)
