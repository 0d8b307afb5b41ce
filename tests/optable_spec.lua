-- Tests for mlsh.optable (core/optable.c via core/lua_optable.c). Expected op lists are
-- /work/shared/reference/coreml-versions.md §3; eligibility facts ane-and-partitioners.md §1.
local optable = require("mlsh.optable")
local spec = require("mlsh.spec")

local function words(s)
  local t = {}
  for w in s:gmatch("[%w_]+") do t[#t + 1] = w end
  table.sort(t)
  return t
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function find_cond(conds, id, value)
  for _, c in ipairs(conds) do
    if c.id == id and (value == nil or c.value == value) then return c end
  end
  return nil
end

local function fails(pattern, f, ...)
  local v, msg = f(...)
  assert.is_nil(v)
  assert.is_string(msg)
  if pattern then assert.is_truthy(msg:find(pattern), "message '" .. msg .. "' does not match '" .. pattern .. "'") end
end

local BASE_SET = words([[
abs, acos, add, affine, argsort, asin, atan, atanh, avg_pool, band_part, batch_norm, batch_to_space, cast, ceil,
clamped_relu, classify, clip, concat, cond, const, conv, conv_quantized, conv_transpose, cos, cosh, crop,
crop_resize, cumsum, depth_to_space, einsum, elu, equal, erf, exp, exp2, expand_dims, fill, flatten2d, floor,
floor_div, gather, gather_along_axis, gather_nd, gelu, greater, greater_equal, gru, identity, instance_norm,
inverse, l2_norm, l2_pool, layer_norm, leaky_relu, less, less_equal, linear, linear_activation, list_gather,
list_length, list_read, list_scatter, list_write, local_response_norm, log, logical_and, logical_not, logical_or,
logical_xor, lstm, make_list, matmul, max_pool, maximum, minimum, mod, mul, non_maximum_suppression, non_zero,
not_equal, one_hot, pad, pixel_shuffle, pow, prelu, random_bernoulli, random_categorical, random_normal,
random_uniform, range_1d, real_div, reduce_argmax, reduce_argmin, reduce_l1_norm, reduce_l2_norm, reduce_log_sum,
reduce_log_sum_exp, reduce_max, reduce_mean, reduce_min, reduce_prod, reduce_sum, reduce_sum_square, relu, relu6,
resample, reshape, resize_bilinear, resize_nearest_neighbor, reverse, reverse_sequence, rnn, round, rsqrt,
scaled_tanh, scatter, scatter_along_axis, scatter_nd, select, shape, sigmoid, sigmoid_hard, sign, silu, sin, sinh,
slice_by_index, slice_by_size, sliding_windows, softmax, softplus, softplus_parametric, softsign, space_to_batch,
space_to_depth, split, sqrt, square, squeeze, stack, sub, tan, tanh, threshold, thresholded_relu, tile, topk,
transpose, upsample_bilinear, upsample_nearest_neighbor, while_loop]])

local IOS17_REVISED = words([[
batch_norm, cast, clamped_relu, clip, conv, conv_transpose, crop_resize, elu, expand_dims, gather, gather_along_axis,
gather_nd, gru, instance_norm, inverse, l2_norm, layer_norm, leaky_relu, linear, linear_activation,
local_response_norm, log, lstm, matmul, non_maximum_suppression, prelu, reduce_argmax, reduce_argmin, resample,
reshape, reshape_like, reverse, reverse_sequence, rnn, rsqrt, scaled_tanh, scatter, scatter_along_axis, scatter_nd,
sigmoid_hard, slice_by_index, slice_by_size, sliding_windows, softplus_parametric, squeeze, thresholded_relu, topk,
transpose]])

describe("mlsh.optable op lists", function()
  before_each(function() optable.reset() end)

  it("has the 151-op base set at iOS15", function()
    local new = optable.list("iOS15", "new")
    assert.equal(151, #BASE_SET)
    assert.equal(151, #new)
    assert.same(BASE_SET, new)
    assert.same(BASE_SET, optable.list("iOS15"))
  end)

  it("has the iOS16 new ops and new versions", function()
    assert.same(words("constexpr_affine_dequantize constexpr_cast constexpr_lut_to_dense constexpr_sparse_to_dense " ..
                      "fill_like pixel_unshuffle reshape_like"), optable.list("iOS16", "new"))
    assert.same(words("crop_resize resample upsample_bilinear gather gather_along_axis gather_nd topk"),
                optable.list("iOS16", "revised"))
  end)

  it("has the iOS17 new ops and 48 new versions", function()
    assert.same({"dequantize", "quantize", "resize"}, optable.list("iOS17", "new"))
    assert.equal(48, #IOS17_REVISED)
    assert.same(IOS17_REVISED, optable.list("iOS17", "revised"))
    assert.equal(51, #optable.list("iOS17", "changed"))
  end)

  it("has the iOS18 new ops (with the backend's write_state) and new versions", function()
    assert.same(words("constexpr_blockwise_shift_scale constexpr_lut_to_sparse constexpr_sparse_blockwise_shift_scale " ..
                      "read_state scaled_dot_product_attention slice_update write_state"),
                optable.list("iOS18", "new"))
    assert.same(words("constexpr_cast constexpr_lut_to_dense constexpr_sparse_to_dense gru"),
                optable.list("iOS18", "revised"))
  end)

  it("counts the ops available in each opset", function()
    assert.equal(151, #optable.list("iOS15"))
    assert.equal(158, #optable.list("iOS16"))
    assert.equal(161, #optable.list("iOS17"))
    assert.equal(168, #optable.list("iOS18"))
    assert.same(optable.list("iOS18"), optable.list("iOS26"))
    assert.same({}, optable.list("iOS26", "new"))
    assert.same({}, optable.list("iOS26", "changed"))
    assert.same(optable.list("iOS18"), optable.list())
  end)

  it("returns sorted, unique names", function()
    local all = optable.list()
    for i = 2, #all do assert.is_true(all[i - 1] < all[i]) end
  end)

  it("has no broadcast_to, where or expand op", function()
    for _, n in ipairs({"broadcast_to", "where", "expand"}) do
      assert.is_false(optable.exists(n))
      fails("unknown MIL op", optable.get, n)
    end
  end)

  it("accepts every opset form", function()
    assert.same(optable.list("iOS17"), optable.list("CoreML7"))
    assert.same(optable.list("iOS17"), optable.list("ios17"))
    assert.same(optable.list("iOS17"), optable.list(8))
    assert.same(optable.list("iOS17"), optable.list("macOS14"))
    assert.same({"iOS15", "iOS16", "iOS17", "iOS18"}, optable.opsets())
    local name, n = optable.opset("CoreML7")
    assert.equal("iOS17", name)
    assert.equal(8, n)
    assert.equal("iOS15", (optable.opset(6)))
    assert.equal("iOS26", (optable.opset("CoreML9")))
  end)

  it("returns nil and a message for opsets without ML-program ops", function()
    fails("start at iOS15", optable.opset, "iOS14")
    fails("start at iOS15", optable.opset, 5)
    fails("start at iOS15", optable.list, "CoreML3")
    fails("outside", optable.list, 11)
    fails("cannot resolve", optable.list, "iOS 17 beta")
    fails("cannot resolve", optable.exists, "conv", "garbage")
    fails("cannot resolve", optable.get, "conv", "garbage")
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() optable.list({}) end)
    assert.has_error(function() optable.list("iOS17", 3) end)
    assert.has_error(function() optable.list("iOS17", "newest") end)
    assert.has_error(function() optable.list(nil, "new") end)
    assert.has_error(function() optable.opset(nil) end)
    assert.has_error(function() optable.opset(7.5) end)
  end)
end)

describe("mlsh.optable.get", function()
  before_each(function() optable.reset() end)

  it("describes conv", function()
    local e = optable.get("conv")
    assert.equal("conv", e.name)
    assert.equal("mil", e.kind)
    assert.equal("iOS15", e.introduced)
    assert.equal(6, e.introduced_spec)
    assert.same({"iOS17"}, e.revisions)
    assert.same({8}, e.revision_specs)
    assert.same({"iOS15", "iOS17"}, e.versions)
    assert.same({6, 8}, e.version_specs)
    assert.matches("weight dtype", e.revision_notes.iOS17)
    assert.equal("conv", e.category)
    assert.equal("builtin", e.origin)
    assert.is_false(e.overridden)
    local ane = e.eligibility.ANE
    assert.equal("yes", ane.status)
    assert.same({"fp16"}, find_cond(ane.conditions, "dtype").values)
    assert.is_table(find_cond(ane.conditions, "max_dilation", 1))
    assert.is_table(find_cond(ane.conditions, "max_dim", 16384))
    assert.is_table(find_cond(ane.conditions, "max_rank", 4))
    assert.same({"static", "enumerated"}, find_cond(ane.conditions, "shapes").values)
    assert.is_table(find_cond(e.eligibility.GPU.conditions, "max_rank", 5))
    assert.equal("yes", e.eligibility.CPU.status)
    assert.is_true(#e.facts >= 1)
  end)

  it("has constexpr_lut_to_dense introduced at iOS16 and revised at iOS18", function()
    local e = optable.get("constexpr_lut_to_dense")
    assert.equal("iOS16", e.introduced)
    assert.equal(7, e.introduced_spec)
    assert.same({"iOS18"}, e.revisions)
    assert.matches("new signature", e.revision_notes.iOS18)
    for _, u in ipairs({"ANE", "GPU", "CPU"}) do assert.equal("n/a", e.eligibility[u].status) end
  end)

  it("has scaled_dot_product_attention at iOS18 only", function()
    local e = optable.get("scaled_dot_product_attention")
    assert.equal("iOS18", e.introduced)
    assert.equal(9, e.introduced_spec)
    assert.same({}, e.revisions)
    assert.is_false(optable.exists("scaled_dot_product_attention", "iOS17"))
    assert.is_true(optable.exists("scaled_dot_product_attention", "iOS18"))
    assert.is_true(optable.exists("scaled_dot_product_attention", "CoreML8"))
    assert.is_true(optable.exists("scaled_dot_product_attention", 10))
    assert.is_true(optable.exists("scaled_dot_product_attention"))
  end)

  it("records other introductions and revisions", function()
    local cases = {
      gather = {"iOS15", {"iOS16", "iOS17"}}, gru = {"iOS15", {"iOS17", "iOS18"}},
      topk = {"iOS15", {"iOS16", "iOS17"}}, crop_resize = {"iOS15", {"iOS16", "iOS17"}},
      upsample_bilinear = {"iOS15", {"iOS16"}}, reshape_like = {"iOS16", {"iOS17"}},
      constexpr_cast = {"iOS16", {"iOS18"}}, constexpr_affine_dequantize = {"iOS16", {}},
      quantize = {"iOS17", {}}, dequantize = {"iOS17", {}}, resize = {"iOS17", {}},
      read_state = {"iOS18", {}}, write_state = {"iOS18", {}}, slice_update = {"iOS18", {}},
      constexpr_blockwise_shift_scale = {"iOS18", {}}, softmax = {"iOS15", {}}, affine = {"iOS15", {}},
    }
    for name, c in pairs(cases) do
      local e = optable.get(name)
      assert.equal(c[1], e.introduced, name)
      assert.same(c[2], e.revisions, name)
    end
  end)

  it("keeps notes from the reference", function()
    assert.matches("coreml_update_state", optable.get("write_state").note)
    assert.matches("TANH_APPROXIMATION", optable.get("gelu").note)
    assert.matches("attn_mask", optable.get("scaled_dot_product_attention").note)
    assert.matches("int16/uint16", optable.get("gather").revision_notes.iOS16)
    assert.matches("uint16 output", optable.get("reduce_argmin").revision_notes.iOS17)
  end)

  it("gives the op version an opset uses", function()
    assert.equal("iOS15", optable.version_at("gather", "iOS15"))
    assert.equal("iOS16", optable.version_at("gather", "iOS16"))
    assert.equal("iOS17", optable.version_at("gather", "macOS14"))
    local name, n = optable.version_at("gather", 9)
    assert.equal("iOS17", name)
    assert.equal(8, n)
    assert.equal("iOS18", optable.version_at("gru", "iOS26"))
    local e = optable.get("gather", "iOS16")
    assert.equal("iOS16", e.opset)
    assert.equal("iOS16", e.version)
    assert.equal(7, e.version_spec)
    assert.equal("iOS15", optable.get("softmax", "CoreML8").version)
  end)

  it("returns nil and a message for ops not in an opset or unknown", function()
    fails("not in opset iOS16 %(introduced iOS17%)", optable.get, "quantize", "iOS16")
    fails("not in opset iOS17", optable.version_at, "scaled_dot_product_attention", "iOS17")
    fails("unknown MIL op 'convolution'", optable.get, "convolution")
    fails("unknown MIL op", optable.version_at, "nope", "iOS17")
    assert.is_false(optable.exists("nope", "iOS18"))
  end)

  it("hands out copies", function()
    local e = optable.get("conv")
    e.revisions[1] = "iOS99"
    e.eligibility.ANE.status = "no"
    assert.same({"iOS17"}, optable.get("conv").revisions)
    assert.equal("yes", optable.get("conv").eligibility.ANE.status)
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() optable.get(nil) end)
    assert.has_error(function() optable.get(42) end)
    assert.has_error(function() optable.get("conv", {}) end)
    assert.has_error(function() optable.exists({}) end)
    assert.has_error(function() optable.exists("conv", true) end)
    assert.has_error(function() optable.version_at("gather") end)
  end)
end)

describe("mlsh.optable eligibility data", function()
  before_each(function() optable.reset() end)

  local statuses = set_of(optable.statuses())
  local sources = set_of(optable.sources())

  local function check_entry(e)
    for _, u in ipairs(optable.units()) do
      local unit = e.eligibility[u]
      assert.is_table(unit, e.name .. " " .. u)
      assert.is_true(statuses[unit.status], e.name .. " " .. u .. " status")
      for _, c in ipairs(unit.conditions) do
        assert.is_string(c.id)
        assert.is_string(c.text)
        assert.is_true(sources[c.source], e.name .. " condition source")
        assert.is_true(c.value == nil or type(c.value) == "number")
        assert.is_true(c.values == nil or type(c.values) == "table")
      end
    end
    for _, f in ipairs(e.facts) do
      assert.is_string(f.text)
      assert.is_true(sources[f.source], e.name .. " fact source")
      assert.is_string(f.ref)
    end
  end

  it("uses the documented vocabularies", function()
    assert.same({"yes", "unknown", "unlikely", "no", "n/a"}, optable.statuses())
    assert.same({"code", "vendor-doc", "community"}, optable.sources())
    assert.same({"ANE", "GPU", "CPU"}, optable.units())
  end)

  it("is well formed for every op and layer", function()
    for _, n in ipairs(optable.list()) do check_entry(optable.get(n)) end
    for _, n in ipairs(optable.layers()) do check_entry(optable.layer(n)) end
  end)

  it("limits dimensions to 16384 on every unit of every compute op", function()
    for _, n in ipairs(optable.list()) do
      local e = optable.get(n)
      if e.eligibility.CPU.status ~= "n/a" then
        for _, u in ipairs({"ANE", "GPU", "CPU"}) do
          if e.eligibility[u].status ~= "no" then
            assert.is_table(find_cond(e.eligibility[u].conditions, "max_dim", 16384), n .. " " .. u)
          end
        end
      end
    end
  end)

  it("marks recurrent ops and gathers as unlikely on the ANE", function()
    for _, n in ipairs({"lstm", "gru", "rnn"}) do
      local e = optable.get(n)
      assert.equal("unlikely", e.eligibility.ANE.status)
      assert.equal("recurrent", e.category)
      assert.equal("community", e.facts[1].source)
    end
    for _, n in ipairs({"gather", "gather_nd", "gather_along_axis"}) do
      local e = optable.get(n)
      assert.equal("unlikely", e.eligibility.ANE.status)
      assert.is_table(find_cond(e.eligibility.ANE.conditions, "small_table"))
    end
  end)

  it("carries pooling, upsampling and broadcast limits", function()
    local pool = optable.get("max_pool").eligibility.ANE.conditions
    assert.is_table(find_cond(pool, "max_kernel", 13))
    assert.is_table(find_cond(pool, "max_stride", 2))
    assert.is_table(find_cond(optable.get("upsample_nearest_neighbor").eligibility.ANE.conditions,
                              "max_scale_factor", 2))
    assert.is_table(find_cond(optable.get("mul").eligibility.ANE.conditions, "no_channel_broadcast"))
  end)

  it("needs an A17 Pro / M4 ANE for int8 activations", function()
    for _, n in ipairs({"quantize", "dequantize"}) do
      local e = optable.get(n)
      local c = find_cond(e.eligibility.ANE.conditions, "device")
      assert.same({"A17 Pro", "M4"}, c.values)
      assert.equal("vendor-doc", c.source)
      assert.is_nil(find_cond(e.eligibility.ANE.conditions, "dtype"))
    end
  end)

  it("treats const and constexpr ops as not placed", function()
    for _, n in ipairs(optable.list()) do
      if n == "const" or n:match("^constexpr_") then
        local e = optable.get(n)
        assert.equal("n/a", e.eligibility.ANE.status, n)
        assert.equal("n/a", e.eligibility.CPU.status, n)
      end
    end
  end)

  it("lists the condition vocabulary and general facts", function()
    local by = {}
    for _, c in ipairs(optable.conditions()) do by[c.id .. ":" .. tostring(c.value)] = c end
    assert.is_table(by["max_dim:16384"])
    assert.is_table(by["max_rank:4"])
    assert.is_table(by["max_rank:5"])
    assert.is_table(by["max_kernel:13"])
    assert.is_table(by["shapes:nil"])
    local facts = optable.general_facts()
    assert.is_true(#facts >= 10)
    local found = false
    for _, f in ipairs(facts) do
      if f.text:find("16384") then found = true end
      assert.is_true(sources[f.source])
    end
    assert.is_true(found)
  end)
end)

describe("mlsh.optable NeuralNetwork layers", function()
  before_each(function() optable.reset() end)

  it("describes gather", function()
    local l = optable.layer("gather")
    assert.equal("gather", l.name)
    assert.equal("nn", l.kind)
    assert.equal(930, l.field)
    assert.equal(4, l.min_spec)
    assert.equal("unlikely", l.eligibility.ANE.status)
    assert.equal("builtin", l.origin)
  end)

  it("carries the known ANE problems of NN layers", function()
    local custom = optable.layer("custom")
    assert.equal(2, custom.min_spec)
    assert.equal("no", custom.eligibility.ANE.status)
    assert.equal("yes", custom.eligibility.GPU.status)
    assert.equal("yes", custom.eligibility.CPU.status)
    for _, n in ipairs({"addBroadcastable", "concatND", "splitND", "loadConstantND", "softmaxND"}) do
      assert.equal("unlikely", optable.layer(n).eligibility.ANE.status, n)
      assert.equal("nn_nd", optable.layer(n).category, n)
    end
    for _, n in ipairs({"uniDirectionalLSTM", "biDirectionalLSTM", "gru", "simpleRecurrent"}) do
      assert.equal("unlikely", optable.layer(n).eligibility.ANE.status, n)
    end
    assert.is_table(find_cond(optable.layer("convolution").eligibility.ANE.conditions, "max_dilation", 1))
    assert.is_table(find_cond(optable.layer("pooling").eligibility.ANE.conditions, "max_kernel", 13))
    assert.is_table(find_cond(optable.layer("upsample").eligibility.ANE.conditions, "max_scale_factor", 2))
    assert.equal("yes", optable.layer("innerProduct").eligibility.ANE.status)
    assert.equal("nn_legacy", optable.layer("softmax").category)
  end)

  it("looks layers up by field number and applies bumps", function()
    assert.equal("gather", optable.layer(930).name)
    assert.equal("gather", optable.layer("Gather").name)
    assert.equal(4, optable.layer_min_spec("convolution", {n_inputs = 2}))
    assert.equal(1, optable.layer_min_spec("convolution"))
    assert.same(spec.nn_layers(), optable.layers())
  end)

  it("returns nil and a message for unknown layers", function()
    fails("unknown NeuralNetwork layer type 'conv'", optable.layer, "conv")
    fails("field number 1", optable.layer, 1)
    fails("unknown NeuralNetwork layer", optable.layer_min_spec, "nope")
  end)

  it("raises on bad argument types", function()
    assert.has_error(function() optable.layer(nil) end)
    assert.has_error(function() optable.layer({}) end)
    assert.has_error(function() optable.layer_min_spec("gather", 5) end)
  end)
end)

describe("mlsh.optable overrides", function()
  before_each(function() optable.reset() end)
  after_each(function() optable.reset() end)

  it("override takes effect and reset undoes it", function()
    local e = optable.override("gather", {eligibility = {ANE = {status = "yes"}}})
    assert.equal("yes", e.eligibility.ANE.status)
    local got = optable.get("gather")
    assert.equal("yes", got.eligibility.ANE.status)
    assert.is_true(got.overridden)
    assert.is_table(find_cond(got.eligibility.ANE.conditions, "small_table")) -- conditions kept
    assert.equal("unknown", got.eligibility.GPU.status) -- other units untouched
    assert.same({ops = {"gather"}, layers = {}}, optable.overrides())
    assert.is_true(optable.reset("gather"))
    assert.equal("unlikely", optable.get("gather").eligibility.ANE.status)
    assert.is_false(optable.get("gather").overridden)
    assert.is_false(optable.reset("gather"))
    assert.same({ops = {}, layers = {}}, optable.overrides())
  end)

  it("stacks overrides in call order", function()
    optable.override("softmax", {category = "first", note = "n1"})
    optable.override("softmax", {category = "second"})
    local e = optable.get("softmax")
    assert.equal("second", e.category)
    assert.equal("n1", e.note)
    optable.reset("softmax")
    assert.equal("softmax", optable.get("softmax").category)
    assert.is_nil(optable.get("softmax").note)
  end)

  it("replaces a unit's conditions when given", function()
    optable.override("conv", {eligibility = {ANE = {conditions = {{id = "max_dim", value = 8192, source = "community"}}}}})
    local ane = optable.get("conv").eligibility.ANE
    assert.equal("yes", ane.status)
    assert.same({{id = "max_dim", value = 8192, source = "community"}}, ane.conditions)
  end)

  it("moves an op between opsets", function()
    optable.override("slice_update", {introduced = "iOS17"})
    assert.is_true(optable.exists("slice_update", "iOS17"))
    assert.is_true(set_of(optable.list("iOS17", "new")).slice_update)
    assert.equal(8, optable.get("slice_update").introduced_spec)
    optable.reset("slice_update")
    assert.is_false(optable.exists("slice_update", "iOS17"))
  end)

  it("replaces revisions and keeps notes only for them", function()
    local e = optable.override("topk", {revisions = {"CoreML6"}})
    assert.same({"iOS16"}, e.revisions)
    assert.same({7}, e.revision_specs)
    assert.same({"iOS15", "iOS16"}, e.versions)
    assert.same({iOS16 = "extra params"}, e.revision_notes)
    assert.is_nil(set_of(optable.list("iOS17", "revised")).topk)
    e = optable.override("topk", {revision_notes = {iOS16 = "mine"}})
    assert.equal("mine", e.revision_notes.iOS16)
  end)

  it("accepts a modified entry from get()", function()
    local e = optable.get("softmax")
    e.eligibility.ANE.status = "no"
    table.insert(e.facts, {text = "team measurement", source = "community", ref = "internal"})
    local got = optable.override("softmax", e)
    assert.equal("no", got.eligibility.ANE.status)
    assert.equal("team measurement", got.facts[#got.facts].text)
    assert.equal("builtin", got.origin)
  end)

  it("refuses an inconsistent override whole", function()
    assert.has_error(function() optable.override("conv", {introduced = "iOS18"}) end)
    local e = optable.get("conv")
    assert.equal("iOS15", e.introduced)
    assert.is_false(e.overridden)
    -- with the revisions dropped it is consistent
    e = optable.override("conv", {introduced = "iOS18", revisions = {}})
    assert.equal("iOS18", e.introduced)
  end)

  it("adds new ops and removes them on reset", function()
    local e = optable.add("my_fused_attention", {
      introduced = "iOS17", category = "attention",
      eligibility = {ANE = {status = "yes", conditions = {{id = "max_dim", value = 16384}}}},
      facts = {{text = "measured on M2", source = "community"}},
    })
    assert.equal("added", e.origin)
    assert.equal("iOS17", e.introduced)
    assert.equal(8, e.introduced_spec)
    assert.equal("yes", e.eligibility.ANE.status)
    assert.equal("unknown", e.eligibility.CPU.status)
    assert.is_false(optable.exists("my_fused_attention", "iOS16"))
    assert.is_true(optable.exists("my_fused_attention", "iOS18"))
    assert.is_true(set_of(optable.list("iOS17", "new")).my_fused_attention)
    assert.equal(169, #optable.list())
    local all = optable.list()
    for i = 2, #all do assert.is_true(all[i - 1] < all[i]) end
    optable.override("my_fused_attention", {note = "fused"})
    assert.equal("fused", optable.get("my_fused_attention").note)
    assert.is_true(optable.reset("my_fused_attention"))
    assert.is_false(optable.exists("my_fused_attention"))
    assert.equal(168, #optable.list())
  end)

  it("overrides and adds layers, leaving the C table alone", function()
    local l = optable.override_layer("GATHER", {min_spec = 5, eligibility = {ANE = {status = "yes"}}})
    assert.equal("gather", l.name)
    assert.equal(5, optable.layer_min_spec("gather"))
    assert.equal(4, spec.nn_layer_min_spec("gather"))
    assert.equal("yes", optable.layer(930).eligibility.ANE.status)
    assert.is_true(optable.reset_layer("gather"))
    assert.equal(4, optable.layer_min_spec("gather"))
    assert.is_false(optable.reset_layer("gather"))

    l = optable.add_layer("myLayer", {min_spec = 6, field = 99999,
                                      bumps = {{id = "n_inputs", value = 3, min_spec = 7}}})
    assert.equal("added", l.origin)
    assert.equal("myLayer", optable.layer(99999).name)
    assert.equal(7, optable.layer_min_spec("myLayer", {n_inputs = 3}))
    assert.equal("myLayer", optable.layers()[#optable.layers()])
    assert.same({ops = {}, layers = {"myLayer"}}, optable.overrides())
    optable.reset()
    fails("unknown NeuralNetwork layer", optable.layer, "myLayer")
  end)

  it("returns nil and a message for unknown or existing names", function()
    fails("unknown MIL op 'nope'", optable.override, "nope", {})
    fails("already exists", optable.add, "conv", {introduced = "iOS15"})
    fails("unknown NeuralNetwork layer", optable.override_layer, "nope", {})
    fails("already exists", optable.add_layer, "gather", {min_spec = 4})
    assert.is_false(optable.reset("nope"))
    assert.is_false(optable.reset_layer("nope"))
  end)

  it("raises on malformed entries and bad argument types", function()
    local bad_patches = {
      {bogus = 1},
      {introduced = "iOS14"},
      {introduced = "whenever"},
      {introduced = {}},
      {revisions = "iOS17"},
      {revisions = {"iOS13"}},
      {category = 5},
      {note = false},
      {eligibility = {NPU = {status = "yes"}}},
      {eligibility = {ANE = {status = "maybe"}}},
      {eligibility = {ANE = "yes"}},
      {eligibility = {ANE = {conditions = {{value = 3}}}}},
      {eligibility = {ANE = {conditions = {{id = "max_dim", value = "big"}}}}},
      {eligibility = {ANE = {conditions = {{id = "x", source = "rumour"}}}}},
      {eligibility = {ANE = {conditions = {{id = "x", colour = "red"}}}}},
      {eligibility = {ANE = {priority = 1}}},
      {facts = {{text = "x"}}},
      {facts = {{text = "x", source = "blog"}}},
      {facts = {"x"}},
      {name = "other"},
      {kind = "nn"},
      {revision_notes = {iOS17 = 5}},
    }
    for i, p in ipairs(bad_patches) do
      assert.has_error(function() optable.override("softmax", p) end, nil, "patch " .. i)
    end
    assert.is_false(optable.get("softmax").overridden)
    assert.has_error(function() optable.override("softmax", "x") end)
    assert.has_error(function() optable.override(5, {}) end)
    assert.has_error(function() optable.add("new_op", {}) end) -- no introduced
    assert.has_error(function() optable.add("new_op", nil) end)
    assert.is_false(optable.exists("new_op"))
    assert.has_error(function() optable.add_layer("newLayer", {}) end) -- no min_spec
    assert.has_error(function() optable.add_layer("newLayer", {min_spec = 11}) end)
    assert.has_error(function() optable.override_layer("gather", {min_spec = "4"}) end)
    assert.has_error(function() optable.override_layer("gather", {bumps = {{id = "x"}}}) end) -- no min_spec
    assert.has_error(function() optable.override_layer("gather", {introduced = "iOS15"}) end)
    assert.has_error(function() optable.override_layer({}, {}) end)
    assert.has_error(function() optable.reset(5) end)
    assert.has_error(function() optable.reset_layer(true) end)
  end)

  it("puts the caller's place in malformed-entry errors", function()
    local ok, err = pcall(function() optable.override("softmax", {bogus = 1}) end)
    assert.is_false(ok)
    assert.matches("optable_spec%.lua:%d+: override: unknown key 'bogus'", err)
    ok, err = pcall(function() optable.get(5) end)
    assert.is_false(ok)
    assert.matches("optable_spec%.lua:%d+: bad argument #1 to 'get'", err)
  end)
end)
