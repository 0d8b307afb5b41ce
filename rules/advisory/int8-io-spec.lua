-- Advisory (playbook 1a): int8 multi-array inputs/outputs exist from specification 10 (iOS26 /
-- macOS26); a model that declares them with a lower specificationVersion is refused at load.
return {
  id = "advisory-int8-io-spec",
  title = "int8 model input/output below specification 10",
  categories = { "deploy", "conversion" },
  severity = "error",
  pattern = "1c",
  evidence = { "https://github.com/apple/coremltools/blob/main/mlmodel/format/FeatureTypes.proto",
               "https://github.com/apple/coremltools/blob/main/mlmodel/format/Model.proto" },
  affected = { spec = "< 10", os = "before iOS26 / macOS26" },
  fix = "declare specificationVersion 10 (minimum_deployment_target iOS26), or keep the I/O fp16/fp32/int32 and "
    .. "quantize inside the model",
  check = function(m, ctx)
    local v = m.spec_version or 0
    if v >= 10 then return end
    for _, role in ipairs({ "input", "output" }) do
      for _, f in ipairs(role == "input" and m:inputs() or m:outputs()) do
        if f.kind == "multiArray" and f.dtype == "int8" then
          ctx:report { message = string.format("%s '%s' is int8 but the model declares spec %d", role, f.name, v),
                       location = { value = f.name } }
        end
      end
    end
  end,
}
