-- Reports: SARIF 2.1.0 logs validated against the 2.1.0 schema's required structure (the subset of
-- sarif-schema-2.1.0.json below: every definition mlsh emits, with its types, enums, required and
-- additionalProperties; references to definitions mlsh never writes accept anything), plus the
-- checks code scanning relies on (stable rule ids, rule indices, levels, locations); Markdown;
-- coloured text and when colour is used.
local json = require "mlsh.json"
local F = require "fixtures"
local P = require "playbook_fixtures"
local sarif = require "mlsh.report.sarif"
local term = require "mlsh.term"

local BIN = os.getenv("MLSH_BIN") or "./mlsh"

-- From sarif-schema-2.1.0.json (OASIS, errata01): definitions used by mlsh, descriptions dropped.
local SCHEMA = json.decode([==[
{"definitions":{"artifact":{"additionalProperties":false,"properties":{"contents":{},
"description":{"$ref":"#/definitions/message"},"encoding":{"type":"string"},
"hashes":{"additionalProperties":{"type":"string"},"type":"object"},"lastModifiedTimeUtc":{"type":"string"},
"length":{"minimum":-1,"type":"integer"},"location":{"$ref":"#/definitions/artifactLocation"},
"mimeType":{"type":"string"},"offset":{"minimum":0,"type":"integer"},"parentIndex":{"minimum":-1,"type":"integer"},
"properties":{"$ref":"#/definitions/propertyBag"},"roles":{"items":{"enum":["analysisTarget","attachment",
"responseFile","resultFile","standardStream","tracedFile","unmodified","modified","added","deleted","renamed",
"uncontrolled","driver","extension","translation","taxonomy","policy","referencedOnCommandLine","memoryContents",
"directory","userSpecifiedConfiguration","toolSpecifiedConfiguration","debugOutputFile"]},"minItems":0,"type":"array",
"uniqueItems":true},"sourceLanguage":{"type":"string"}},"type":"object"},
"artifactLocation":{"additionalProperties":false,"properties":{"description":{"$ref":"#/definitions/message"},
"index":{"minimum":-1,"type":"integer"},"properties":{"$ref":"#/definitions/propertyBag"},"uri":{"type":"string"},
"uriBaseId":{"type":"string"}},"type":"object"},"invocation":{"additionalProperties":false,
"properties":{"account":{"type":"string"},"arguments":{"items":{"type":"string"},"minItems":0,"type":"array",
"uniqueItems":false},"commandLine":{"type":"string"},"endTimeUtc":{"type":"string"},
"environmentVariables":{"additionalProperties":{"type":"string"},"type":"object"},
"executableLocation":{"$ref":"#/definitions/artifactLocation"},"executionSuccessful":{"type":"boolean"},
"exitCode":{"type":"integer"},"exitCodeDescription":{"type":"string"},"exitSignalName":{"type":"string"},
"exitSignalNumber":{"type":"integer"},"machine":{"type":"string"},"notificationConfigurationOverrides":{"items":{},
"minItems":0,"type":"array","uniqueItems":true},"processId":{"type":"integer"},
"processStartFailureMessage":{"type":"string"},"properties":{"$ref":"#/definitions/propertyBag"},
"responseFiles":{"items":{"$ref":"#/definitions/artifactLocation"},"minItems":0,"type":"array","uniqueItems":true},
"ruleConfigurationOverrides":{"items":{},"minItems":0,"type":"array","uniqueItems":true},
"startTimeUtc":{"type":"string"},"stderr":{"$ref":"#/definitions/artifactLocation"},
"stdin":{"$ref":"#/definitions/artifactLocation"},"stdout":{"$ref":"#/definitions/artifactLocation"},
"stdoutStderr":{"$ref":"#/definitions/artifactLocation"},"toolConfigurationNotifications":{"items":{},"minItems":0,
"type":"array","uniqueItems":false},"toolExecutionNotifications":{"items":{},"minItems":0,"type":"array",
"uniqueItems":false},"workingDirectory":{"$ref":"#/definitions/artifactLocation"}},"required":["executionSuccessful"],
"type":"object"},"location":{"additionalProperties":false,
"properties":{"annotations":{"items":{"$ref":"#/definitions/region"},"minItems":0,"type":"array","uniqueItems":true},
"id":{"minimum":-1,"type":"integer"},"logicalLocations":{"items":{"$ref":"#/definitions/logicalLocation"},
"minItems":0,"type":"array","uniqueItems":true},"message":{"$ref":"#/definitions/message"},
"physicalLocation":{"$ref":"#/definitions/physicalLocation"},"properties":{"$ref":"#/definitions/propertyBag"},
"relationships":{"items":{},"minItems":0,"type":"array","uniqueItems":true}},"type":"object"},
"logicalLocation":{"additionalProperties":false,"properties":{"decoratedName":{"type":"string"},
"fullyQualifiedName":{"type":"string"},"index":{"minimum":-1,"type":"integer"},"kind":{"type":"string"},
"name":{"type":"string"},"parentIndex":{"minimum":-1,"type":"integer"},
"properties":{"$ref":"#/definitions/propertyBag"}},"type":"object"},"message":{"additionalProperties":false,
"anyOf":[{"required":["text"]},{"required":["id"]}],"properties":{"arguments":{"items":{"type":"string"},"minItems":0,
"type":"array","uniqueItems":false},"id":{"type":"string"},"markdown":{"type":"string"},
"properties":{"$ref":"#/definitions/propertyBag"},"text":{"type":"string"}},"type":"object"},
"multiformatMessageString":{"additionalProperties":false,"properties":{"markdown":{"type":"string"},
"properties":{"$ref":"#/definitions/propertyBag"},"text":{"type":"string"}},"required":["text"],"type":"object"},
"physicalLocation":{"additionalProperties":false,"anyOf":[{"required":["address"]},{"required":["artifactLocation"]}],
"properties":{"address":{},"artifactLocation":{"$ref":"#/definitions/artifactLocation"},
"contextRegion":{"$ref":"#/definitions/region"},"properties":{"$ref":"#/definitions/propertyBag"},
"region":{"$ref":"#/definitions/region"}},"type":"object"},"propertyBag":{"additionalProperties":true,
"properties":{"tags":{"items":{"type":"string"},"minItems":0,"type":"array","uniqueItems":true}},"type":"object"},
"region":{"additionalProperties":false,"properties":{"byteLength":{"minimum":0,"type":"integer"},
"byteOffset":{"minimum":-1,"type":"integer"},"charLength":{"minimum":0,"type":"integer"},"charOffset":{"minimum":-1,
"type":"integer"},"endColumn":{"minimum":1,"type":"integer"},"endLine":{"minimum":1,"type":"integer"},
"message":{"$ref":"#/definitions/message"},"properties":{"$ref":"#/definitions/propertyBag"},"snippet":{},
"sourceLanguage":{"type":"string"},"startColumn":{"minimum":1,"type":"integer"},"startLine":{"minimum":1,
"type":"integer"}},"type":"object"},"reportingConfiguration":{"additionalProperties":false,
"properties":{"enabled":{"type":"boolean"},"level":{"enum":["none","note","warning","error"]},
"parameters":{"$ref":"#/definitions/propertyBag"},"properties":{"$ref":"#/definitions/propertyBag"},
"rank":{"maximum":100,"minimum":-1,"type":"number"}},"type":"object"},
"reportingDescriptor":{"additionalProperties":false,
"properties":{"defaultConfiguration":{"$ref":"#/definitions/reportingConfiguration"},
"deprecatedGuids":{"items":{"type":"string"},"minItems":0,"type":"array","uniqueItems":true},
"deprecatedIds":{"items":{"type":"string"},"minItems":0,"type":"array","uniqueItems":true},
"deprecatedNames":{"items":{"type":"string"},"minItems":0,"type":"array","uniqueItems":true},
"fullDescription":{"$ref":"#/definitions/multiformatMessageString"},"guid":{"type":"string"},
"help":{"$ref":"#/definitions/multiformatMessageString"},"helpUri":{"type":"string"},"id":{"type":"string"},
"messageStrings":{"additionalProperties":{"$ref":"#/definitions/multiformatMessageString"},"type":"object"},
"name":{"type":"string"},"properties":{"$ref":"#/definitions/propertyBag"},"relationships":{"items":{},"minItems":0,
"type":"array","uniqueItems":true},"shortDescription":{"$ref":"#/definitions/multiformatMessageString"}},
"required":["id"],"type":"object"},"result":{"additionalProperties":false,
"properties":{"analysisTarget":{"$ref":"#/definitions/artifactLocation"},"attachments":{"items":{},"minItems":0,
"type":"array","uniqueItems":true},"baselineState":{"enum":["new","unchanged","updated","absent"]},
"codeFlows":{"items":{},"minItems":0,"type":"array","uniqueItems":false},"correlationGuid":{"type":"string"},
"fingerprints":{"additionalProperties":{"type":"string"},"type":"object"},"fixes":{"items":{},"minItems":0,
"type":"array","uniqueItems":true},"graphTraversals":{"items":{},"minItems":0,"type":"array","uniqueItems":true},
"graphs":{"items":{},"minItems":0,"type":"array","uniqueItems":true},"guid":{"type":"string"},
"hostedViewerUri":{"type":"string"},"kind":{"enum":["notApplicable","pass","fail","review","open","informational"]},
"level":{"enum":["none","note","warning","error"]},"locations":{"items":{"$ref":"#/definitions/location"},
"minItems":0,"type":"array","uniqueItems":false},"message":{"$ref":"#/definitions/message"},
"occurrenceCount":{"minimum":1,"type":"integer"},"partialFingerprints":{"additionalProperties":{"type":"string"},
"type":"object"},"properties":{"$ref":"#/definitions/propertyBag"},"provenance":{},"rank":{"maximum":100,"minimum":-1,
"type":"number"},"relatedLocations":{"items":{"$ref":"#/definitions/location"},"minItems":0,"type":"array",
"uniqueItems":true},"rule":{},"ruleId":{"type":"string"},"ruleIndex":{"minimum":-1,"type":"integer"},
"stacks":{"items":{},"minItems":0,"type":"array","uniqueItems":true},"suppressions":{"items":{},"minItems":0,
"type":"array","uniqueItems":true},"taxa":{"items":{},"minItems":0,"type":"array","uniqueItems":true},"webRequest":{},
"webResponse":{},"workItemUris":{"items":{"type":"string"},"minItems":0,"type":"array","uniqueItems":true}},
"required":["message"],"type":"object"},"run":{"additionalProperties":false,"properties":{"addresses":{"items":{},
"minItems":0,"type":"array","uniqueItems":false},"artifacts":{"items":{"$ref":"#/definitions/artifact"},"minItems":0,
"type":"array","uniqueItems":true},"automationDetails":{},"baselineGuid":{"type":"string"},
"columnKind":{"enum":["utf16CodeUnits","unicodeCodePoints"]},"conversion":{},"defaultEncoding":{"type":"string"},
"defaultSourceLanguage":{"type":"string"},"externalPropertyFileReferences":{},"graphs":{"items":{},"minItems":0,
"type":"array","uniqueItems":true},"invocations":{"items":{"$ref":"#/definitions/invocation"},"minItems":0,
"type":"array","uniqueItems":false},"language":{"type":"string"},
"logicalLocations":{"items":{"$ref":"#/definitions/logicalLocation"},"minItems":0,"type":"array","uniqueItems":true},
"newlineSequences":{"items":{"type":"string"},"minItems":1,"type":"array","uniqueItems":true},
"originalUriBaseIds":{"additionalProperties":{"$ref":"#/definitions/artifactLocation"},"type":"object"},
"policies":{"items":{"$ref":"#/definitions/toolComponent"},"minItems":0,"type":"array","uniqueItems":true},
"properties":{"$ref":"#/definitions/propertyBag"},"redactionTokens":{"items":{"type":"string"},"minItems":0,
"type":"array","uniqueItems":true},"results":{"items":{"$ref":"#/definitions/result"},"minItems":0,"type":"array",
"uniqueItems":false},"runAggregates":{"items":{},"minItems":0,"type":"array","uniqueItems":true},
"specialLocations":{},"taxonomies":{"items":{"$ref":"#/definitions/toolComponent"},"minItems":0,"type":"array",
"uniqueItems":true},"threadFlowLocations":{"items":{},"minItems":0,"type":"array","uniqueItems":true},
"tool":{"$ref":"#/definitions/tool"},"translations":{"items":{"$ref":"#/definitions/toolComponent"},"minItems":0,
"type":"array","uniqueItems":true},"versionControlProvenance":{"items":{},"minItems":0,"type":"array",
"uniqueItems":true},"webRequests":{"items":{},"minItems":0,"type":"array","uniqueItems":true},
"webResponses":{"items":{},"minItems":0,"type":"array","uniqueItems":true}},"required":["tool"],"type":"object"},
"tool":{"additionalProperties":false,"properties":{"driver":{"$ref":"#/definitions/toolComponent"},
"extensions":{"items":{"$ref":"#/definitions/toolComponent"},"minItems":0,"type":"array","uniqueItems":true},
"properties":{"$ref":"#/definitions/propertyBag"}},"required":["driver"],"type":"object"},
"toolComponent":{"additionalProperties":false,"properties":{"associatedComponent":{},
"contents":{"items":{"enum":["localizedData","nonLocalizedData"]},"type":"array","uniqueItems":true},
"dottedQuadFileVersion":{"type":"string"},"downloadUri":{"type":"string"},
"fullDescription":{"$ref":"#/definitions/multiformatMessageString"},"fullName":{"type":"string"},
"globalMessageStrings":{"additionalProperties":{"$ref":"#/definitions/multiformatMessageString"},"type":"object"},
"guid":{"type":"string"},"informationUri":{"type":"string"},"isComprehensive":{"type":"boolean"},
"language":{"type":"string"},"localizedDataSemanticVersion":{"type":"string"},
"locations":{"items":{"$ref":"#/definitions/artifactLocation"},"minItems":0,"type":"array"},
"minimumRequiredLocalizedDataSemanticVersion":{"type":"string"},"name":{"type":"string"},
"notifications":{"items":{"$ref":"#/definitions/reportingDescriptor"},"minItems":0,"type":"array","uniqueItems":true},
"organization":{"type":"string"},"product":{"type":"string"},"productSuite":{"type":"string"},
"properties":{"$ref":"#/definitions/propertyBag"},"releaseDateUtc":{"type":"string"},
"rules":{"items":{"$ref":"#/definitions/reportingDescriptor"},"minItems":0,"type":"array","uniqueItems":true},
"semanticVersion":{"type":"string"},"shortDescription":{"$ref":"#/definitions/multiformatMessageString"},
"supportedTaxonomies":{"items":{},"minItems":0,"type":"array","uniqueItems":true},
"taxa":{"items":{"$ref":"#/definitions/reportingDescriptor"},"minItems":0,"type":"array","uniqueItems":true},
"translationMetadata":{},"version":{"type":"string"}},"required":["name"],"type":"object"}},
"root":{"additionalProperties":false,"properties":{"$schema":{"type":"string"},"inlineExternalProperties":{"items":{},
"minItems":0,"type":"array","uniqueItems":true},"properties":{"$ref":"#/definitions/propertyBag"},
"runs":{"items":{"$ref":"#/definitions/run"},"minItems":0,"type":"array","uniqueItems":false},
"version":{"enum":["2.1.0"]}},"required":["version","runs"],"type":"object"}}
]==])

-- A JSON Schema (draft-07) validator for the keywords the subset uses. Returns a list of errors.
local function kind_of(v)
  local t = type(v)
  if v == json.null then return "null" end
  if t == "table" then
    local mt = getmetatable(v)
    if mt and mt.__name == "json.array" then return "array" end
    return "object"
  end
  if t == "number" then return math.type(v) == "integer" and "integer" or "number" end
  return t
end

local function validate(v, schema, path, errors)
  path = path or "$"
  errors = errors or {}
  if schema["$ref"] then
    local name = schema["$ref"]:match("^#/definitions/(.+)$")
    return validate(v, SCHEMA.definitions[name], path, errors)
  end
  local k = kind_of(v)
  if schema.type then
    local ok = schema.type == k or (schema.type == "number" and k == "integer")
    if not ok then errors[#errors + 1] = path .. ": expected " .. schema.type .. ", got " .. k return errors end
  end
  if schema.enum then
    local found = false
    for _, e in ipairs(schema.enum) do
      if e == v then found = true end
    end
    if not found then errors[#errors + 1] = path .. ": " .. tostring(v) .. " is not one of the allowed values" end
  end
  if schema.minimum and (k == "integer" or k == "number") and v < schema.minimum then
    errors[#errors + 1] = path .. ": below the minimum " .. schema.minimum
  end
  if schema.anyOf then
    local any = false
    for _, s in ipairs(schema.anyOf) do
      if #validate(v, s, path, {}) == 0 then any = true end
    end
    if not any then errors[#errors + 1] = path .. ": matches none of anyOf" end
  end
  if k == "object" then
    for _, r in ipairs(schema.required or {}) do
      if v[r] == nil then errors[#errors + 1] = path .. ": missing required property '" .. r .. "'" end
    end
    for key, val in pairs(v) do
      local ps = schema.properties and schema.properties[key]
      if ps then
        validate(val, ps, path .. "." .. key, errors)
      elseif schema.additionalProperties == false then
        errors[#errors + 1] = path .. ": property '" .. key .. "' is not allowed"
      elseif type(schema.additionalProperties) == "table" then
        validate(val, schema.additionalProperties, path .. "." .. key, errors)
      end
    end
  elseif k == "array" then
    if schema.minItems and #v < schema.minItems then errors[#errors + 1] = path .. ": fewer than " .. schema.minItems .. " items" end
    if schema.uniqueItems then
      local seen = {}
      for i, x in ipairs(v) do
        local key = json.encode(x)
        if seen[key] then errors[#errors + 1] = path .. "[" .. i .. "]: duplicate item" end
        seen[key] = true
      end
    end
    if schema.items then
      for i, x in ipairs(v) do validate(x, schema.items, path .. "[" .. i .. "]", errors) end
    end
  end
  return errors
end

local function assert_valid(doc)
  local errors = validate(doc, SCHEMA.root)
  assert.same({}, errors)
  -- what code scanning needs beyond the schema
  assert.equal("2.1.0", doc.version)
  assert.is_string(doc["$schema"])
  for _, run in ipairs(doc.runs) do
    local driver = run.tool.driver
    assert.equal("mlsh", driver.name)
    local ids = {}
    for i, r in ipairs(driver.rules) do
      assert.is_nil(ids[r.id], "duplicate rule id " .. r.id)
      ids[r.id] = i - 1
      assert.is_string(r.shortDescription.text)
    end
    for _, res in ipairs(run.results) do
      assert.is_not_nil(ids[res.ruleId], "result for an undeclared rule " .. tostring(res.ruleId))
      assert.equal(ids[res.ruleId], res.ruleIndex)
      assert.is_string(res.message.text)
      -- SARIF 3.27.10: a level other than "none" requires kind "fail"
      if res.level ~= "none" then assert.equal("fail", res.kind) end
      assert.is_true(#res.locations >= 1)
      for _, l in ipairs(res.locations) do
        assert.is_string(l.physicalLocation.artifactLocation.uri)
        assert.equal(1, l.physicalLocation.region.startLine)
      end
      assert.is_string(next(res.partialFingerprints) and select(2, next(res.partialFingerprints)))
    end
  end
end

local function run(args, env)
  local errf = os.tmpname()
  local p = io.popen(string.format("%s%s %s 2>%s", env and ("env " .. env .. " ") or "", BIN, args, errf))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = F.read(errf)
  os.remove(errf)
  return out, err, code
end

describe("SARIF", function()
  local fx, R
  setup(function()
    fx = P.shared()
    R = fx.rules
  end)

  it("the validator rejects what the schema rejects", function()
    local good = { version = "2.1.0", runs = json.array({ { tool = { driver = { name = "mlsh" } }, results = json.array({}) } }) }
    assert.same({}, validate(good, SCHEMA.root))
    local function bad(mutate, pattern)
      local doc = json.decode(json.encode(good))
      mutate(doc)
      local errors = validate(doc, SCHEMA.root)
      assert.is_true(#errors > 0, "accepted: " .. pattern)
      assert.matches(pattern, table.concat(errors, "\n"))
    end
    bad(function(d) d.version = nil end, "missing required property 'version'")
    bad(function(d) d.version = "2.0.0" end, "not one of the allowed values")
    bad(function(d) d.runs[1].tool.driver.name = nil end, "driver: missing required property 'name'")
    bad(function(d) d.runs[1].results[1] = { message = { text = "x" }, level = "fatal" } end, "level: fatal is not one of")
    bad(function(d) d.runs[1].results[1] = { message = {} } end, "matches none of anyOf")
    bad(function(d) d.runs[1].results[1] = { message = { text = "x" }, severity = "error" } end, "property 'severity' is not allowed")
    bad(function(d) d.runs[1].results[1] = { message = { text = "x" },
      locations = json.array({ { physicalLocation = { region = { startLine = 0 } } } }) } end, "below the minimum 1")
  end)

  it("mlsh check --format sarif is a valid log with op, layer and input locations", function()
    local out, err, code = run("check --format sarif --target iOS16 " .. F.q(R.spec8_prog) .. " " .. F.q(R.nn_custom) .. " "
      .. F.q(R.nn_range) .. " " .. F.q(R.dilated_prog))
    assert.equal(1, code, err)
    local doc = json.decode(out)
    assert_valid(doc)
    local results = doc.runs[1].results
    local by_rule = {}
    for _, r in ipairs(results) do by_rule[r.ruleId] = r end
    assert.equal("error", by_rule["deployment-target"].level)
    assert.equal("warning", by_rule["dilated-conv"].level)
    local conv = by_rule["dilated-conv"].locations[1]
    assert.equal(R.dilated_prog:gsub("^/", "file:///"), conv.physicalLocation.artifactLocation.uri)
    assert.equal("conv2", conv.logicalLocations[1].name)
    assert.equal("main/conv2", conv.logicalLocations[1].fullyQualifiedName)
    assert.equal("swish", by_rule["custom-layers"].locations[1].logicalLocations[1].name)
    assert.equal("data", by_rule["range-shapes"].locations[1].logicalLocations[1].name)
    assert.equal("variable", by_rule["range-shapes"].locations[1].logicalLocations[1].kind)
    assert.equal(4, #doc.runs[1].artifacts)
    -- every rule of the set is declared, so ids and indices do not depend on what fired
    assert.is_true(#doc.runs[1].tool.driver.rules >= 17)
  end)

  it("keeps rule ids, indices and fingerprints stable across runs", function()
    local a = json.decode((run("check --format sarif " .. F.q(R.dilated_prog))))
    local b = json.decode((run("check --format sarif " .. F.q(R.dilated_prog))))
    assert.same(a.runs[1].tool.driver.rules, b.runs[1].tool.driver.rules)
    for i, r in ipairs(a.runs[1].results) do
      assert.equal(r.ruleId, b.runs[1].results[i].ruleId)
      assert.same(r.partialFingerprints, b.runs[1].results[i].partialFingerprints)
    end
  end)

  it("mlsh diagnose --format sarif: the diagnosis (or the open questions) and the findings", function()
    local out, err, code = run("diagnose --format sarif --symptom slow-inference --answer which-predictions=all " .. F.q(R.fp32))
    assert.equal(0, code, err)
    local doc = json.decode(out)
    assert_valid(doc)
    local first = doc.runs[1].results[1]
    assert.equal("diagnose/slow-inference/fp32-compute", first.ruleId)
    assert.equal("warning", first.level)
    assert.equal("2b", first.properties.pattern)
    out = run("diagnose --format sarif --symptom slow-inference " .. F.q(R.fp32))
    doc = json.decode(out)
    assert_valid(doc)
    assert.equal("diagnose/slow-inference/open-question", doc.runs[1].results[1].ruleId)
    assert.equal("open", doc.runs[1].results[1].kind)
    assert.equal("none", doc.runs[1].results[1].level)
    -- no model at all (a conversion that failed): still a valid log
    out = run("diagnose --format sarif --symptom conversion-failure --answer failure-kind=error --answer error-kind=opset")
    doc = json.decode(out)
    assert_valid(doc)
    assert.equal("diagnose/conversion-failure/deployment-target", doc.runs[1].results[1].ruleId)
  end)

  it("mlsh checklist --format sarif: pass, fail and open items", function()
    local out, err, code = run("checklist production --format sarif " .. F.q(R.dropout_prog))
    assert.equal(1, code, err)
    local doc = json.decode(out)
    assert_valid(doc)
    local kinds = {}
    for _, r in ipairs(doc.runs[1].results) do kinds[r.kind] = (kinds[r.kind] or 0) + 1 end
    assert.is_true(kinds.pass > 0 and kinds.fail > 0 and kinds.open > 0)
    assert.equal("checklist/production/eval-mode", doc.runs[1].results[1].ruleId)
    assert.equal("error", doc.runs[1].results[1].level)
  end)

  it("writes URIs code scanning can resolve", function()
    assert.equal("models/My%20Model.mlpackage", sarif.uri("models/My Model.mlpackage"))
    assert.equal("file:///abs/m%2Bx.mlmodel", sarif.uri("/abs/m+x.mlmodel"))
    assert.equal(sarif.fingerprint("a", "b"), sarif.fingerprint("a", "b"))
    assert.are_not.equal(sarif.fingerprint("a", "b"), sarif.fingerprint("ab", ""))
  end)
end)

describe("Markdown", function()
  it("renders check, diagnose and checklist as Markdown", function()
    local R = P.shared().rules
    local out, _, code = run("check --format markdown " .. F.q(R.dilated_prog))
    assert.equal(0, code)
    assert.matches("## mlsh check: `", out)
    assert.matches("| severity | pattern | rule | message | location | fix |", out, 1, true)
    assert.matches("| warning | 2b | `dilated-conv` |", out, 1, true)
    assert.matches("### Placement %(ALL%)", out)
    out = run("diagnose --format markdown --symptom slow-inference --answer which-predictions=all " .. F.q(R.fp32))
    assert.matches("### Diagnosis %[2b%]", out)
    assert.matches("```python\n", out, 1, true)
    out = run("diagnose --format markdown --symptom works-in-simulator-not-device " .. F.q(R.fp16))
    assert.matches("> **Wrong approach.**", out, 1, true)
    assert.matches("### Open questions", out)
    out = run("checklist production --format markdown " .. F.q(R.fp16))
    assert.matches("| status | item | evidence |", out, 1, true)
    assert.matches("| ✅ pass | Exported in eval mode", out, 1, true)
  end)

  it("keeps table rows intact", function()
    local md = require "mlsh.report.markdown"
    assert.equal("a \\| b<br>c", md.cell("a | b\nc"))
  end)
end)

describe("colour", function()
  local function env(t) return function(k) return t[k] end end

  it("is used on a terminal only, never with NO_COLOR or TERM=dumb; MLSH_COLOR forces", function()
    assert.is_false(term.enabled(1, env({})), "stdout of busted is not a terminal here")
    assert.is_true(term.enabled(1, env({ MLSH_COLOR = "always" })))
    assert.is_true(term.enabled(1, env({ MLSH_COLOR = "always", NO_COLOR = "1" })))
    assert.is_false(term.enabled(1, env({ MLSH_COLOR = "never" })))
    assert.is_false(term.enabled(1, env({ NO_COLOR = "1" })))
    assert.is_false(term.enabled(1, env({ TERM = "dumb" })))
  end)

  it("paints severities when enabled and nothing otherwise", function()
    local on, off = term.painter(true), term.painter(false)
    assert.equal("\27[31merror\27[0m", on.word("error"))
    assert.equal("error", off.word("error"))
    assert.equal("plain", term.strip(on.bold("plain")))
  end)

  it("check, diagnose and checklist print plain text when piped, coloured with MLSH_COLOR=always", function()
    local R = P.shared().rules
    for _, args in ipairs({ "check " .. F.q(R.dilated_prog), "diagnose --symptom slow-inference --answer which-predictions=all "
        .. F.q(R.fp32), "checklist production " .. F.q(R.fp16) }) do
      local plain = run(args)
      assert.is_nil(plain:find("\27[", 1, true), args)
      local coloured = run(args, "MLSH_COLOR=always")
      assert.is_not_nil(coloured:find("\27[", 1, true), args)
      assert.equal(plain, term.strip(coloured))
    end
  end)
end)
