-- The CLI/JSON contracts, byte for byte: `info --json`, `check --format json|sarif`,
-- `diagnose --json`, `weights --json` and `compress --json` on the bundled examples and the test
-- fixtures, against tests/golden/cli/*.txt (recorded before the Lua layer was restructured).
-- `ep --json` lives in golden_ep_spec.lua. MLSH_UPDATE_GOLDEN=1 rewrites the files.
local F = require "fixtures"
local R = require "rule_fixtures"
local G = require "golden"

local EXAMPLES = {
  "cnn.mlmodel", "cnn_flex.mlmodel", "image_classifier.mlpackage", "multi.mlpackage", "pipeline.mlmodel",
  "prog.mlpackage", "prog.mlpackage.zip", "stateful.mlpackage",
  "mobilenet_like_good.mlpackage", "mobilenet_like_fp32.mlpackage", "mobilenet_like_dilated.mlpackage",
  "mobilenet_like_flexible.mlpackage", "mobilenet_like_nn.mlmodel", "mobilenet_like_ios18.mlpackage",
  "transformer_encoder_good.mlpackage", "transformer_encoder_gather.mlpackage", "transformer_encoder_lstm.mlpackage",
  "transformer_encoder_enumerated.mlpackage", "transformer_encoder_range.mlpackage", "transformer_encoder_fp32.mlpackage",
}
local FIXTURES = { "nn", "nn_flex", "nn_enum", "nn_classifier", "nn_quant", "pipeline", "pkg", "multi", "zip" }
local RULE_FIXTURES = { "dilated_prog", "nn_gather", "spec8_prog", "nn_custom", "stateful", "gather_prog", "topk_prog",
  "unknown_op", "prog_image_raw", "prog_image_scaled", "op_too_new", "op_in_opset" }

describe("golden CLI output", function()
  local E, fx, rx, dirs, out_dir
  local function ex(list)
    local t = {}
    for i, n in ipairs(list) do t[i] = F.q(E .. "/" .. n) end
    return table.concat(t, " ")
  end
  local function of(set, list)
    local t = {}
    for i, n in ipairs(list) do t[i] = F.q(assert(set[n], n)) end
    return table.concat(t, " ")
  end
  setup(function()
    E, fx, rx = G.examples(), F.shared(), R.shared()
    out_dir = F.tmpdir()
    dirs = { [E] = "<examples>", [fx.dir] = "<fixtures>", [rx.dir] = "<rules>",
      [out_dir] = "<out>" }
  end)

  local CASES = {
    { "info_examples", function() return "info --json " .. ex(EXAMPLES) end },
    { "info_fixtures", function() return "info --json " .. of(fx, FIXTURES) end },
    { "check_examples_json", function() return "check --format json " .. ex(EXAMPLES) end },
    { "check_examples_sarif", function() return "check --format sarif " .. ex(EXAMPLES) end },
    -- the rule and format fixtures are tiny models that test static rules: the placement's first stage
    -- only (--static); the examples take mlsh check's default, the calibrated second stage
    { "check_rules_json", function() return "check --static --format json " .. of(rx, RULE_FIXTURES) end },
    { "check_rules_sarif", function() return "check --static --format sarif --target iOS16 " .. of(rx, RULE_FIXTURES) end },
    { "check_fixtures_json", function()
      return "check --static --format json --compute-units cpu_and_ne " .. of(fx, FIXTURES) end },
  }
  local SYMPTOMS = { "slow-inference", "load-failure", "high-memory", "accuracy-after-compression", "ship-now" }
  for _, s in ipairs(SYMPTOMS) do
    CASES[#CASES + 1] = { "diagnose_" .. s, function()
      return "diagnose " .. ex({ "mobilenet_like_fp32.mlpackage" }) .. " --symptom " .. s .. " --json" end }
  end
  CASES[#CASES + 1] = { "diagnose_nn_gather", function()
    return "diagnose " .. of(rx, { "nn_gather" }) .. " --symptom slow-inference --compute-units cpu_and_ne --json" end }
  for _, n in ipairs({ "prog.mlpackage", "mobilenet_like_good.mlpackage", "transformer_encoder_fp32.mlpackage",
    "cnn.mlmodel", "pipeline.mlmodel", "mobilenet_like_nn.mlmodel", "prog.mlpackage.zip" }) do
    CASES[#CASES + 1] = { "weights_" .. n:gsub("%.", "_"), function() return "weights --json " .. ex({ n }) end }
  end
  CASES[#CASES + 1] = { "weights_nn_quant", function() return "weights --json " .. of(fx, { "nn_quant" }) end }
  local COMPRESS = {
    { "palettize4", "--palettize 4", "transformer_encoder_good.mlpackage" },
    { "palettize4", "--palettize 4", "mobilenet_like_fp32.mlpackage" },
    { "int8", "--quantize int8", "transformer_encoder_good.mlpackage" },
    { "int4_block", "--quantize int4 --per-block 32", "mobilenet_like_ios18.mlpackage" },
    { "prune50", "--prune 0.5", "mobilenet_like_fp32.mlpackage" },
    { "nm24", "--n-m 2:4", "transformer_encoder_good.mlpackage" },
    { "dry_run", "--palettize 2 --dry-run", "mobilenet_like_good.mlpackage" },
  }
  for _, c in ipairs(COMPRESS) do
    local k, opts, n = c[1], c[2], c[3]
    CASES[#CASES + 1] = { "compress_" .. k .. "_" .. n:match("^[^.]*"), function()
      return "compress --json --threads 1 " .. opts .. " -o " .. F.q(out_dir .. "/" .. k .. "_" .. n) .. " " .. ex({ n })
    end }
  end

  for _, c in ipairs(CASES) do
    it("is unchanged: " .. c[1], function()
      local out, err, code = G.run(c[2](), dirs)
      assert.truthy(code == 0 or code == 1, err)
      assert.equal(G.compare("cli", c[1], out), out)
    end)
  end
end)
