-- Builds the small models the test suite uses (a CNN as a neural network, an ML program package,
-- a zipped package, a pipeline, a multi-function program) into the folder given as arg[1].
-- Until the builder (mlsh.builder) lands these come from the test fixture writer.
local out = arg[1] or "build/examples"
local home = require "mlsh.home"
package.path = home .. "/tests/support/?.lua;" .. package.path
local F = require "fixtures"
assert(require("mlsh.core").fs.mkdir_p(out))
local fx = F.build_all(out)
for _, key in ipairs({ "nn", "nn_flex", "nn_classifier", "pipeline", "pkg", "zip", "multi" }) do print(fx[key]) end
