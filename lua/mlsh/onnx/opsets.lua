-- mlsh.onnx.opsets — the opset version at which each ai.onnx operator's schema last changed, so
-- a node's "since version" (what ONNX Runtime's Node::SinceVersion() reports and the CoreML EP
-- compares with its builders' supported opset range) follows from the model's opset import.
-- Versions are from the ONNX operator changelog (onnx/docs/Changelog.md); ops not listed here
-- have an unknown since-version and are never refused for it.
local M = {}

local V = {
  Abs = { 1, 6, 13 }, Add = { 1, 6, 7, 13, 14 }, And = { 1, 7 }, ArgMax = { 1, 11, 12, 13 }, ArgMin = { 1, 11, 12, 13 },
  AveragePool = { 1, 7, 10, 11, 19, 22 }, BatchNormalization = { 1, 6, 7, 9, 14, 15 },
  Cast = { 1, 6, 9, 13, 19, 21, 23, 24 }, CastLike = { 15, 19, 21, 23, 24 }, Ceil = { 1, 6, 13 }, Clip = { 1, 6, 11,
    12, 13 },
  Concat = { 1, 4, 11, 13 }, Constant = { 1, 9, 11, 12, 13, 19, 21, 23, 24 }, ConstantOfShape = { 9, 20, 21, 23, 24 },
  Conv = { 1, 11, 22 }, ConvTranspose = { 1, 11, 22 }, Cos = { 7, 22 }, CumSum = { 11, 14 },
  DepthToSpace = { 1, 11, 13 }, Div = { 1, 6, 7, 13, 14 }, Dropout = { 1, 6, 7, 10, 12, 13, 22 }, Einsum = { 12 },
  Elu = { 1, 6, 22 }, Equal = { 1, 7, 11, 13, 19 }, Erf = { 9, 13 }, Exp = { 1, 6, 13 }, Expand = { 8, 13 },
  Flatten = { 1, 9, 11, 13, 21, 23, 24 }, Floor = { 1, 6, 13 }, Gather = { 1, 11, 13 }, GatherElements = { 11, 13 },
  GatherND = { 11, 12, 13 }, Gelu = { 20 }, Gemm = { 1, 6, 7, 9, 11, 13 }, GlobalAveragePool = { 1, 22 },
  GlobalMaxPool = { 1, 22 }, Greater = { 1, 7, 9, 13 }, GreaterOrEqual = { 12, 16 }, GridSample = { 16, 20, 22 },
  GroupNormalization = { 18, 21 }, HardSigmoid = { 1, 6, 22 }, HardSwish = { 14, 22 }, Identity = { 1, 13, 14, 16, 19,
    21, 23, 24 },
  If = { 1, 11, 13, 16, 19, 21, 23, 24 }, InstanceNormalization = { 1, 6, 22 }, LRN = { 1, 13 },
  LSTM = { 1, 7, 14, 22 }, LayerNormalization = { 17 }, LeakyRelu = { 1, 6, 16 }, Less = { 1, 7, 9, 13 },
  LessOrEqual = { 12, 16 }, Log = { 1, 6, 13 }, Loop = { 1, 11, 13, 16, 19, 21, 23, 24 }, MatMul = { 1, 9, 13 },
  Max = { 1, 6, 8, 12, 13 }, MaxPool = { 1, 8, 10, 11, 12, 22 }, Mean = { 1, 6, 8, 13 }, Min = { 1, 6, 8, 12, 13 },
  Mod = { 10, 13 }, Mul = { 1, 6, 7, 13, 14 }, Neg = { 1, 6, 13 }, Not = { 1 }, Or = { 1, 7 },
  PRelu = { 1, 6, 7, 9, 16 }, Pad = { 1, 2, 11, 13, 18, 19, 21, 23, 24 }, Pow = { 1, 7, 12, 13, 15 },
  Range = { 11 }, Reciprocal = { 1, 6, 13 }, ReduceL2 = { 1, 11, 13, 18 }, ReduceMax = { 1, 11, 12, 13, 18, 20 },
  ReduceMean = { 1, 11, 13, 18 }, ReduceMin = { 1, 11, 12, 13, 18, 20 }, ReduceProd = { 1, 11, 13, 18 },
  ReduceSum = { 1, 11, 13 }, ReduceSumSquare = { 1, 11, 13, 18 }, Relu = { 1, 6, 13, 14 },
  Reshape = { 1, 5, 13, 14, 19, 21, 23, 24 }, Resize = { 10, 11, 13, 18, 19 }, Round = { 11, 22 },
  Scan = { 8, 9, 11, 16, 19, 21, 23, 24 }, ScatterElements = { 11, 13, 16, 18 }, ScatterND = { 11, 13, 16, 18 },
  Shape = { 1, 13, 15, 19, 21, 23, 24 }, Sigmoid = { 1, 6, 13 }, Sin = { 7, 22 }, Size = { 1, 13, 19, 21, 23, 24 },
  Slice = { 1, 10, 11, 13 }, Softmax = { 1, 11, 13 }, Softplus = { 1, 22 }, Split = { 1, 2, 11, 13, 18 },
  Sqrt = { 1, 6, 13 }, Squeeze = { 1, 11, 13, 21, 23, 24 }, Sub = { 1, 6, 7, 13, 14 }, Sum = { 1, 6, 8, 13 },
  Tanh = { 1, 6, 13 }, Tile = { 1, 6, 13 }, TopK = { 1, 10, 11 }, Transpose = { 1, 13, 21, 23, 24 },
  Trilu = { 14 }, Unsqueeze = { 1, 11, 13, 21, 23, 24 }, Where = { 9, 16 }, Xor = { 1, 7 },
}
M.VERSIONS = V

-- The since-version of op at model opset `opset` (default domain), or nil when unknown.
function M.since(op, opset)
  local list = V[op]
  if not list or not opset then return nil end
  local best
  for _, v in ipairs(list) do
    if v <= opset then best = v end
  end
  return best
end

return M
