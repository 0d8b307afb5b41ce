-- Playbook 5b (wrong output, preprocessing): an image input with no scale/bias preprocessing feeds
-- raw 0..255 pixels to the network. Right only if the network was trained on 0..255; most expect
-- 0..1 or mean/std normalized input, and the symptom is plausible-looking but wrong predictions.
-- NeuralNetwork: the preprocessing list; ML program: coremltools inserts mul (scale) / add (bias)
-- ops right after the image input, so their absence means no preprocessing.
local PRE_OPS = { mul = true, add = true, sub = true, real_div = true, batch_norm = true, linear_activation = true }
local PASS_THROUGH = { cast = true, identity = true, transpose = true, reshape = true, expand_dims = true, squeeze = true }

local function nn_has_preprocessing(nn, name, n_images)
  for _, p in ipairs(nn.preprocessing) do
    if p.featureName == name or (p.featureName == "" and n_images == 1) then
      if p:has("meanImage") then return true end
      if p:has("scaler") then
        local s = p.scaler
        if (s.channelScale ~= 0 and s.channelScale ~= 1) or s.redBias ~= 0 or s.greenBias ~= 0
            or s.blueBias ~= 0 or s.grayBias ~= 0 then
          return true
        end
      end
    end
  end
  return false
end

local function program_has_preprocessing(fn, name)
  local consumers = {}
  for _, op in ipairs(fn.all_ops) do
    local ok, inputs = pcall(op.inputs, op)
    for _, e in ipairs(ok and inputs or {}) do
      if e.name then
        consumers[e.name] = consumers[e.name] or {}
        table.insert(consumers[e.name], op)
      end
    end
  end
  local frontier, depth = { name }, 0
  while #frontier > 0 and depth < 4 do
    local next_names = {}
    for _, n in ipairs(frontier) do
      for _, op in ipairs(consumers[n] or {}) do
        if PRE_OPS[op.type] then return true end
        if PASS_THROUGH[op.type] then
          for _, o in ipairs(op.outputs) do next_names[#next_names + 1] = o.name end
        end
      end
    end
    frontier, depth = next_names, depth + 1
  end
  return false
end

return {
  id = "image-preprocessing",
  title = "image input without scale/bias preprocessing",
  categories = { "accuracy", "conversion" },
  severity = "warning",
  pattern = "5b",
  fix = "give the scale and bias the network was trained with to ct.ImageType(scale=1/255., bias=[...]) at "
    .. "conversion (or confirm that the network expects raw 0..255 pixels)",
  applies = function(m)
    for _, f in ipairs(m:inputs()) do
      if f.kind == "image" then return true end
    end
    return false
  end,
  check = function(m, ctx)
    local images = {}
    for _, f in ipairs(m:inputs()) do
      if f.kind == "image" then images[#images + 1] = f end
    end
    for _, f in ipairs(images) do
      local has
      if m.neural_network then
        has = nn_has_preprocessing(m.neural_network, f.name, #images)
      elseif m.program then
        has = false
        for _, fn in ipairs(m:functions()) do
          if program_has_preprocessing(fn, f.name) then has = true end
        end
      else
        has = true -- other model types (e.g. Vision feature prints) normalize internally
      end
      if not has then
        ctx:report {
          message = string.format("image input '%s' (%s %dx%d) has no scale/bias preprocessing: the network sees "
            .. "raw 0..255 pixel values", f.name, f.color_space or "?", f.width or 0, f.height or 0),
          location = { value = f.name },
          evidence = { color_space = f.color_space, width = f.width, height = f.height },
        }
      end
    end
  end,
}
