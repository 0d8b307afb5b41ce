-- make conformance: every NeuralNetwork, tree ensemble, GLM and pipeline model of ../shared/corpus/coreml*/
-- through `mlsh run --random SEED --json`. The corpus has no known outputs for these models, so
-- the check is: the run succeeds with finite outputs (no NaN/inf), or fails with the one-line
-- "not supported" message (custom layers; exit 1) — never a crash, a hang or a garbled error.
-- Prints one line per model and the totals; exit 1 when a model crashed or produced non-finite values.
local json = require "mlsh.json"
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local C = require "common"

local corpus = arg[1] or "../shared/corpus"
C.require_corpus(corpus, "classic_nn")

local TYPES = { neuralNetwork = true, neuralNetworkClassifier = true, neuralNetworkRegressor = true,
  treeEnsembleClassifier = true, treeEnsembleRegressor = true, glmClassifier = true, glmRegressor = true,
  pipeline = true, pipelineClassifier = true, pipelineRegressor = true }

local ran, unsupported, bad = 0, 0, 0
for _, folder in ipairs({ "coreml", "coreml-real" }) do
  local dir = corpus .. "/" .. folder
  for _, e in ipairs(C.models_in(dir)) do
    local facts = C.readjson(e.facts) or {}
    if TYPES[facts.model_type] then
      local out, code = C.sh(string.format("timeout %d %s run %s --random 1 --json 2>&1", C.TIMEOUT, C.q(C.bin), C.q(dir .. "/" .. e.model)))
      local verdict
      if code == 0 then
        local ok, doc = pcall(json.decode, out)
        local finite = ok and type(doc) == "table" and type(doc.outputs) == "table"
        for _, o in pairs(finite and doc.outputs or {}) do
          if o.nan ~= 0 or o.inf ~= 0 then finite = false end
        end
        if finite then ran, verdict = ran + 1, "ok" else bad, verdict = bad + 1, "NON-FINITE or unreadable JSON" end
      elseif code == 1 and out:match("^mlsh run: [^\n]*is not supported by the interpreter\n$") then
        unsupported, verdict = unsupported + 1, "unsupported: " .. out:gsub("\n$", "")
      else
        bad, verdict = bad + 1, string.format("FAILED (exit %s): %s", tostring(code), out:sub(1, 300))
      end
      print(string.format("%-12s %-24s %s: %s", folder, facts.model_type, e.model, verdict))
    end
  end
end
print(string.format("classic_nn: %d ran with finite outputs, %d cleanly unsupported, %d bad", ran, unsupported, bad))
os.exit(bad == 0 and 0 or 1)
