/* spec.c — specificationVersion <-> OS / Core ML / MIL opset tables, NN layer and feature minimum
 * spec versions. Data from /work/shared/reference/coreml-versions.md and coreml-format.md (see spec.h). */
#include "spec.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- spec rows (versions.md §1) */

static const mlsh_spec_row rows[MLSH_SPEC_MAX] = {
  {1, {"11", "10.13", "11", "4", NULL}, NULL, "1", NULL, NULL, 0, 0,
   {"NeuralNetwork (feed-forward/recurrent)", "GLM", "tree ensembles", "SVM", "pipelines", "feature engineering"}},
  {2, {"11.2", "10.13.2", "11.2", "4.2", NULL}, NULL, "1.2", NULL, NULL, 0, 0,
   {"custom NN layers", "fp16 NN weights"}},
  {3, {"12", "10.14", "12", "5", NULL}, NULL, "2", NULL, NULL, 0, 0,
   {"flexible shapes & image sizes", "quantized weights", "custom models", "NMS",
    "VisionFeaturePrint/TextClassifier/WordTagger"}},
  {4, {"13", "10.15", "13", "6", NULL}, NULL, "3", "CoreML3", NULL, 0, 1,
   {"updatable models", "exact-rank (ND) NN layers", "control flow", "kNN", "linked model", "gazetteer",
    "word embedding"}},
  {5, {"14", "11", "14", "7", NULL}, NULL, "4", "CoreML4", NULL, 0, 1,
   {"model deployment/encryption",
    "NN layers cumSum, oneHot, clampedReLU, argSort, sliceBySize, conv3d, pool3d, pixelShuffle", "int8 matmul"}},
  {6, {"15", "12", "15", "8", NULL}, NULL, "5", "CoreML5", "ios15", 1, 1,
   {"mlProgram (MILSpec.Program)", "AudioFeaturePrint"}},
  {7, {"16", "13", "16", "9", "1.0"}, "visionOS 1.0 observed in metadata.json", "6", "CoreML6", "ios16", 1, 1,
   {"FLOAT16 multiarray", "GRAYSCALE_FLOAT16 images", "constexpr compression ops"}},
  {8, {"17", "14", "17", "10", NULL}, NULL, "7", "CoreML7", "ios17", 1, 1,
   {"iOS17 ops (quantize/dequantize …)", "ClassConfidenceThresholding", "scene print v2"}},
  {9, {"18", "15", "18", "11", NULL}, NULL, "8", "CoreML8", "ios18", 1, 1,
   {"multiple functions", "states", "iOS18 compression ops", "SDPA"}},
  {10, {"26", "26", "26", "26", "26"}, "model.mil tag ios26 not verified", "9", "CoreML9", "ios26", 0, 1,
   {"Int8 MultiArray I/O for ML programs"}},
};

static const char *const platform_names[MLSH_PLATFORM_COUNT] = {"iOS", "macOS", "tvOS", "watchOS", "visionOS"};

const mlsh_spec_row *mlsh_spec_row_get(int spec) {
  if (spec < MLSH_SPEC_MIN || spec > MLSH_SPEC_MAX) return NULL;
  return &rows[spec - 1];
}

const char *mlsh_platform_name(mlsh_platform p) {
  return (p >= 0 && p < MLSH_PLATFORM_COUNT) ? platform_names[p] : NULL;
}

/* ---------------------------------------------------------------- small string helpers */

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int ci_eq(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
  return *a == *b;
}

/* Length of prefix p if s starts with it (case-insensitive), else 0. */
static size_t ci_prefix(const char *s, const char *p) {
  size_t n = 0;
  for (; p[n]; n++)
    if (!s[n] || tolower((unsigned char)s[n]) != tolower((unsigned char)p[n])) return 0;
  return n;
}

static const char *skip_space(const char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  return s;
}

/* Parse "D[.D[.D]]" (separators '.' or '_', when us_ok) at s into v[3]. Returns the number of
 * components read (0 if s does not start with a digit); *end points past them. */
static int parse_version(const char *s, int us_ok, int v[3], const char **end) {
  int n = 0;
  v[0] = v[1] = v[2] = 0;
  while (n < 3 && isdigit((unsigned char)*s)) {
    long x = 0;
    while (isdigit((unsigned char)*s)) {
      x = x * 10 + (*s - '0');
      if (x > 100000) x = 100000;
      s++;
    }
    v[n++] = (int)x;
    if ((*s == '.' || (us_ok && *s == '_')) && isdigit((unsigned char)s[1])) s++;
    else break;
  }
  *end = s;
  return n;
}

static int vcmp(const int a[3], const int b[3]) {
  for (int i = 0; i < 3; i++)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

int mlsh_platform_from_name(const char *name) {
  if (!name) return -1;
  for (int p = 0; p < MLSH_PLATFORM_COUNT; p++)
    if (ci_eq(name, platform_names[p])) return p;
  if (ci_eq(name, "iPadOS") || ci_eq(name, "macCatalyst")) return MLSH_PLATFORM_IOS;
  return -1;
}

/* ---------------------------------------------------------------- deployment targets */

static const struct { const char *prefix; mlsh_platform p; } platform_prefixes[] = {
  /* longest first where one is a prefix of another */
  {"maccatalyst", MLSH_PLATFORM_IOS}, /* Mac Catalyst versions follow iOS numbering */
  {"macos", MLSH_PLATFORM_MACOS},
  {"ipados", MLSH_PLATFORM_IOS},
  {"ios", MLSH_PLATFORM_IOS},
  {"tvos", MLSH_PLATFORM_TVOS},
  {"watchos", MLSH_PLATFORM_WATCHOS},
  {"visionos", MLSH_PLATFORM_VISIONOS},
};

static void known_majors(mlsh_platform p, char *buf, size_t len) {
  size_t used = 0;
  int last = -1;
  buf[0] = 0;
  for (int i = 0; i < MLSH_SPEC_MAX; i++) {
    const char *ver = rows[i].os[p];
    if (!ver) continue;
    int v[3];
    const char *end;
    parse_version(ver, 0, v, &end);
    int shown = v[0] == 10 && p == MLSH_PLATFORM_MACOS ? 1000 + v[1] : v[0];
    if (shown == last) continue;
    last = shown;
    int w = shown >= 1000 ? snprintf(buf + used, len - used, "%s10.%d", used ? ", " : "", shown - 1000)
                          : snprintf(buf + used, len - used, "%s%d", used ? ", " : "", shown);
    if (w < 0 || (size_t)w >= len - used) break;
    used += (size_t)w;
  }
}

int mlsh_spec_from_target(const char *target, char *err, size_t errlen) {
  static const char *const hint = "expected e.g. iOS16, iOS 16.4, macOS13, macOS10_15, tvOS16, watchOS9, visionOS1";
  if (!target) {
    seterr(err, errlen, "no deployment target given");
    return 0;
  }
  const char *s = skip_space(target);
  size_t n;
  if ((n = ci_prefix(s, "coremltools.target.")) || (n = ci_prefix(s, "ct.target.")) || (n = ci_prefix(s, "target.")))
    s += n;
  int p = -1;
  for (size_t i = 0; i < sizeof platform_prefixes / sizeof platform_prefixes[0]; i++)
    if ((n = ci_prefix(s, platform_prefixes[i].prefix))) {
      p = (int)platform_prefixes[i].p;
      s += n;
      break;
    }
  if (p < 0) {
    seterr(err, errlen, "unknown deployment target '%s' (%s)", target, hint);
    return 0;
  }
  while (*s == ' ' || *s == '_' || *s == '-') s++;
  int v[3];
  const char *end;
  if (parse_version(s, 1, v, &end) == 0 || *skip_space(end) != 0) {
    seterr(err, errlen, "cannot read the OS version in deployment target '%s' (%s)", target, hint);
    return 0;
  }
  if (p == MLSH_PLATFORM_MACOS && v[0] == 10 && v[1] == 16) { /* macOS 10.16 is macOS 11 (ct.target.macOS10_16) */
    v[0] = 11;
    v[1] = v[2] = 0;
  }
  /* The major version (for macOS 10.x: major.minor) must be one the table lists. */
  int known = 0, best = 0, first[3] = {0, 0, 0}, have_first = 0;
  for (int i = 0; i < MLSH_SPEC_MAX; i++) {
    const char *ver = rows[i].os[p];
    if (!ver) continue;
    int r[3];
    parse_version(ver, 0, r, &end);
    if (!have_first) {
      memcpy(first, r, sizeof r);
      have_first = 1;
    }
    if (r[0] == v[0] && (r[0] != 10 || p != MLSH_PLATFORM_MACOS || r[1] == v[1])) known = 1;
    if (vcmp(r, v) <= 0) best = rows[i].spec;
  }
  const char *pname = platform_names[p];
  if (have_first && vcmp(v, first) < 0) {
    seterr(err, errlen, "%s %d.%d predates Core ML (first: %s %d.%d)", pname, v[0], v[1], pname, first[0], first[1]);
    return 0;
  }
  if (!known || best == 0) {
    char majors[128];
    known_majors((mlsh_platform)p, majors, sizeof majors);
    if (p == MLSH_PLATFORM_MACOS && v[0] == 10)
      seterr(err, errlen, "%s 10.%d is not in the version table (known: %s)", pname, v[1], majors);
    else
      seterr(err, errlen, "%s %d is not in the version table (known: %s)", pname, v[0], majors);
    return 0;
  }
  return best;
}

const char *mlsh_spec_target_name(int spec, mlsh_platform p, char *buf, size_t buflen, char *err, size_t errlen) {
  const mlsh_spec_row *r = mlsh_spec_row_get(spec);
  if (!r) {
    seterr(err, errlen, "spec version %d is outside %d..%d", spec, MLSH_SPEC_MIN, MLSH_SPEC_MAX);
    return NULL;
  }
  if ((int)p < 0 || p >= MLSH_PLATFORM_COUNT) {
    seterr(err, errlen, "unknown platform");
    return NULL;
  }
  if (!r->os[p]) {
    seterr(err, errlen, "no %s version is recorded for spec %d", platform_names[p], spec);
    return NULL;
  }
  int v[3];
  const char *end;
  int nc = parse_version(r->os[p], 0, v, &end);
  while (nc > 1 && v[nc - 1] == 0) nc--; /* "1.0" -> 1 */
  int w;
  if (nc == 1) w = snprintf(buf, buflen, "%s%d", platform_names[p], v[0]);
  else if (nc == 2) w = snprintf(buf, buflen, "%s%d_%d", platform_names[p], v[0], v[1]);
  else w = snprintf(buf, buflen, "%s%d_%d_%d", platform_names[p], v[0], v[1], v[2]);
  if (w < 0 || (size_t)w >= buflen) {
    seterr(err, errlen, "name buffer too small");
    return NULL;
  }
  return buf;
}

/* ---------------------------------------------------------------- opsets, tags, Core ML versions */

int mlsh_spec_from_opset(const char *opset, char *err, size_t errlen) {
  if (opset)
    for (int i = 0; i < MLSH_SPEC_MAX; i++)
      if (rows[i].opset && ci_eq(opset, rows[i].opset)) return rows[i].spec;
  seterr(err, errlen, "unknown MIL opset '%s' (expected CoreML3..CoreML9)", opset ? opset : "(null)");
  return 0;
}

int mlsh_spec_from_mil_tag(const char *tag, char *err, size_t errlen) {
  if (tag)
    for (int i = 0; i < MLSH_SPEC_MAX; i++)
      if (rows[i].mil_tag && ci_eq(tag, rows[i].mil_tag)) return rows[i].spec;
  seterr(err, errlen, "unknown model.mil opset tag '%s' (expected ios15..ios18)", tag ? tag : "(null)");
  return 0;
}

int mlsh_spec_from_coreml(const char *version, char *err, size_t errlen) {
  if (!version) {
    seterr(err, errlen, "no Core ML version given");
    return 0;
  }
  const char *s = skip_space(version);
  size_t n;
  if ((n = ci_prefix(s, "core ml")) || (n = ci_prefix(s, "coreml"))) s = skip_space(s + n);
  int v[3], r[3];
  const char *end;
  if (parse_version(s, 0, v, &end) == 0 || *skip_space(end) != 0) {
    seterr(err, errlen, "cannot read Core ML version '%s' (expected e.g. 7, 1.2, Core ML 6)", version);
    return 0;
  }
  for (int i = 0; i < MLSH_SPEC_MAX; i++) {
    parse_version(rows[i].coreml, 0, r, &end);
    if (vcmp(r, v) == 0) return rows[i].spec;
  }
  seterr(err, errlen, "unknown Core ML version '%s' (known: 1, 1.2, 2 .. 9)", version);
  return 0;
}

int mlsh_spec_resolve(const char *s, char *err, size_t errlen) {
  if (!s) {
    seterr(err, errlen, "nothing to resolve");
    return 0;
  }
  const char *t = skip_space(s);
  const char *u = t;
  while (isdigit((unsigned char)*u) || *u == '.') u++;
  if (*t && *skip_space(u) == 0) {
    seterr(err, errlen, "'%s' is ambiguous: pass a number for a spec version, or e.g. 'CoreML7' / 'iOS17'", s);
    return 0;
  }
  if (ci_prefix(t, "coreml") || ci_prefix(t, "core ml")) return mlsh_spec_from_coreml(t, err, errlen);
  int spec = mlsh_spec_from_target(t, err, errlen); /* also covers model.mil tags ("ios17" == iOS17) */
  if (spec) return spec;
  char terr[256];
  snprintf(terr, sizeof terr, "%s", err && errlen ? err : "");
  seterr(err, errlen, "cannot resolve '%s' to a spec version: %s", s, terr);
  return 0;
}

/* ---------------------------------------------------------------- NN layers (format.md §4, Utils.cpp) */

static const char *const REF_UTILS = "coremltools mlmodel/src/Utils.cpp (isIOS12NeuralNetworkLayer, hasIOS14NeuralNetworkFeatures)";
static const char *const REF_DEPLOY = "coremltools converters/mil/_deployment_compatibility.py iOS14Features";

static const mlsh_layer_bump B_CONV_2IN = {"n_inputs", "convolution with 2 inputs (weights given as an input) is not an iOS12 layer",
                                            1, 2, NULL, 4, "coremltools mlmodel/src/Utils.cpp isIOS12NeuralNetworkLayer"};
static const mlsh_layer_bump B_INT8DQ = {"int8_dynamic_quantize", "int8DynamicQuantize = true (int8 matmul)", 0, 0, NULL, 5,
                                         "coremltools mlmodel/src/Utils.cpp hasIOS14NeuralNetworkFeatures"};
static const mlsh_layer_bump B_UPS_MODE = {"linear_upsample_mode",
                                           "linearUpsampleMode ALIGN_CORNERS_TRUE / ALIGN_CORNERS_FALSE (not DEFAULT)", 0, 0,
                                           "ALIGN_CORNERS_TRUE,ALIGN_CORNERS_FALSE", 5, NULL};
static const mlsh_layer_bump B_UPS_FRAC = {"fractional_scaling_factor", "fractionalScalingFactor set", 0, 0, NULL, 5, NULL};
static const mlsh_layer_bump B_PIXSHUF = {"mode", "reorganizeData mode PIXEL_SHUFFLE", 0, 0, "PIXEL_SHUFFLE", 5, NULL};
static const mlsh_layer_bump B_SLICE7 = {"n_inputs", "sliceDynamic with 7 inputs", 1, 7, NULL, 5,
                                         "coremltools mlmodel/src/Utils.cpp hasIOS14NeuralNetworkFeatures"};
static const mlsh_layer_bump B_SQUEEZE = {"squeeze_masks", "squeezeMasks set", 0, 0, NULL, 5, NULL};
static const mlsh_layer_bump B_INTERLEAVE = {"interleave", "concatND interleave = true", 0, 0, NULL, 5, NULL};
static const mlsh_layer_bump B_TILE2 = {"n_inputs", "tile with 2 inputs (dynamic reps)", 1, 2, NULL, 5,
                                        "coremltools converters/mil/_deployment_compatibility.py iOS14Features"};

#define L(n, f, s) {n, f, s, {NULL}}
#define LB(n, f, s, ...) {n, f, s, {__VA_ARGS__, NULL}}
static const mlsh_nn_layer layers[] = {
  /* iOS11 set (spec 1); see isIOS12NeuralNetworkLayer */
  LB("convolution", 100, 1, &B_CONV_2IN), L("pooling", 120, 1), L("activation", 130, 1),
  LB("innerProduct", 140, 1, &B_INT8DQ), L("embedding", 150, 1), L("batchnorm", 160, 1), L("mvn", 165, 1),
  L("l2normalize", 170, 1), L("softmax", 175, 1), L("lrn", 180, 1), L("crop", 190, 1), L("padding", 200, 1),
  LB("upsample", 210, 1, &B_UPS_MODE, &B_UPS_FRAC),
  L("resizeBilinear", 211, 3), L("cropResize", 212, 3), /* the two iOS12 layers */
  L("unary", 220, 1), L("add", 230, 1), L("multiply", 231, 1), L("average", 240, 1), L("scale", 245, 1),
  L("bias", 250, 1), L("max", 260, 1), L("min", 261, 1), L("dot", 270, 1), L("reduce", 280, 1),
  L("loadConstant", 290, 1), L("reshape", 300, 1), L("flatten", 301, 1), L("permute", 310, 1), L("concat", 320, 1),
  L("split", 330, 1), L("sequenceRepeat", 340, 1), LB("reorganizeData", 345, 1, &B_PIXSHUF), L("slice", 350, 1),
  L("simpleRecurrent", 400, 1), L("gru", 410, 1), L("uniDirectionalLSTM", 420, 1), L("biDirectionalLSTM", 430, 1),
  L("custom", 500, 2), /* iOS11.2: custom layers */
  /* iOS13 (spec 4): every layer not in the iOS12 set */
  L("copy", 600, 4), L("branch", 605, 4), L("loop", 615, 4), L("loopBreak", 620, 4), L("loopContinue", 625, 4),
  L("rangeStatic", 635, 4), L("rangeDynamic", 640, 4), L("clip", 660, 4), L("ceil", 665, 4), L("floor", 670, 4),
  L("sign", 680, 4), L("round", 685, 4), L("exp2", 700, 4), L("sin", 710, 4), L("cos", 715, 4), L("tan", 720, 4),
  L("asin", 730, 4), L("acos", 735, 4), L("atan", 740, 4), L("sinh", 750, 4), L("cosh", 755, 4), L("tanh", 760, 4),
  L("asinh", 770, 4), L("acosh", 775, 4), L("atanh", 780, 4), L("erf", 790, 4), L("gelu", 795, 4),
  L("equal", 815, 4), L("notEqual", 820, 4), L("lessThan", 825, 4), L("lessEqual", 827, 4), L("greaterThan", 830, 4),
  L("greaterEqual", 832, 4), L("logicalOr", 840, 4), L("logicalXor", 845, 4), L("logicalNot", 850, 4),
  L("logicalAnd", 855, 4), L("modBroadcastable", 865, 4), L("minBroadcastable", 870, 4),
  L("maxBroadcastable", 875, 4), L("addBroadcastable", 880, 4), L("powBroadcastable", 885, 4),
  L("divideBroadcastable", 890, 4), L("floorDivBroadcastable", 895, 4), L("multiplyBroadcastable", 900, 4),
  L("subtractBroadcastable", 905, 4), LB("tile", 920, 4, &B_TILE2), L("stack", 925, 4), L("gather", 930, 4),
  L("scatter", 935, 4), L("gatherND", 940, 4), L("scatterND", 945, 4), L("softmaxND", 950, 4),
  L("gatherAlongAxis", 952, 4), L("scatterAlongAxis", 954, 4), L("reverse", 960, 4), L("reverseSeq", 965, 4),
  L("splitND", 975, 4), LB("concatND", 980, 4, &B_INTERLEAVE), L("transpose", 985, 4),
  LB("sliceStatic", 995, 4, &B_SQUEEZE), LB("sliceDynamic", 1000, 4, &B_SLICE7, &B_SQUEEZE),
  L("slidingWindows", 1005, 4), L("topK", 1015, 4), L("argMin", 1020, 4), L("argMax", 1025, 4),
  L("embeddingND", 1040, 4), LB("batchedMatmul", 1045, 4, &B_INT8DQ), L("getShape", 1065, 4),
  L("loadConstantND", 1070, 4), L("fillLike", 1080, 4), L("fillStatic", 1085, 4), L("fillDynamic", 1090, 4),
  L("broadcastToLike", 1100, 4), L("broadcastToStatic", 1105, 4), L("broadcastToDynamic", 1110, 4),
  L("squeeze", 1120, 4), L("expandDims", 1125, 4), L("flattenTo2D", 1130, 4), L("reshapeLike", 1135, 4),
  L("reshapeStatic", 1140, 4), L("reshapeDynamic", 1145, 4), L("rankPreservingReshape", 1150, 4),
  L("constantPad", 1155, 4), L("randomNormalLike", 1170, 4), L("randomNormalStatic", 1175, 4),
  L("randomNormalDynamic", 1180, 4), L("randomUniformLike", 1190, 4), L("randomUniformStatic", 1195, 4),
  L("randomUniformDynamic", 1200, 4), L("randomBernoulliLike", 1210, 4), L("randomBernoulliStatic", 1215, 4),
  L("randomBernoulliDynamic", 1220, 4), L("categoricalDistribution", 1230, 4), L("reduceL1", 1250, 4),
  L("reduceL2", 1255, 4), L("reduceMax", 1260, 4), L("reduceMin", 1265, 4), L("reduceSum", 1270, 4),
  L("reduceProd", 1275, 4), L("reduceMean", 1280, 4), L("reduceLogSum", 1285, 4), L("reduceSumSquare", 1290, 4),
  L("reduceLogSumExp", 1295, 4), L("whereNonZero", 1313, 4), L("matrixBandPart", 1315, 4),
  L("lowerTriangular", 1320, 4), L("upperTriangular", 1325, 4), L("whereBroadcastable", 1330, 4),
  L("layerNormalization", 1350, 4), L("NonMaximumSuppression", 1400, 4),
  /* iOS14 (spec 5) layers */
  L("oneHot", 1450, 5), L("cumSum", 1455, 5), L("clampedReLU", 1460, 5), L("argSort", 1461, 5),
  L("pooling3d", 1465, 5), L("globalPooling3d", 1466, 5), L("sliceBySize", 1470, 5), L("convolution3d", 1471, 5),
};
#undef L
#undef LB

size_t mlsh_nn_layer_count(void) { return sizeof layers / sizeof layers[0]; }

const mlsh_nn_layer *mlsh_nn_layer_at(size_t i) { return i < mlsh_nn_layer_count() ? &layers[i] : NULL; }

const mlsh_nn_layer *mlsh_nn_layer_find(const char *name) {
  if (!name) return NULL;
  size_t n = mlsh_nn_layer_count();
  for (size_t i = 0; i < n; i++)
    if (strcmp(layers[i].name, name) == 0) return &layers[i];
  for (size_t i = 0; i < n; i++)
    if (ci_eq(layers[i].name, name)) return &layers[i];
  return NULL;
}

const mlsh_nn_layer *mlsh_nn_layer_by_field(int field) {
  size_t n = mlsh_nn_layer_count();
  for (size_t i = 0; i < n; i++)
    if (layers[i].field == field) return &layers[i];
  return NULL;
}

/* ---------------------------------------------------------------- model-level features */

static const mlsh_spec_feature features[] = {
  {"custom_layer", 2, "NeuralNetwork custom layer", "coremltools _MINIMUM_CUSTOM_LAYER_SPEC_VERSION"},
  {"fp16_weights", 2, "fp16 NeuralNetwork weights", "coremltools _MINIMUM_FP16_SPEC_VERSION"},
  {"custom_model", 3, "custom model (Model.customModel)", "coremltools _MINIMUM_CUSTOM_MODEL_SPEC_VERSION"},
  {"quantized_weights", 3, "quantized NeuralNetwork weights", "coremltools _MINIMUM_QUANTIZED_MODEL_SPEC_VERSION"},
  {"flexible_shapes", 3, "flexible input shapes / image sizes (enumerated or ranges)",
   "coremltools _MINIMUM_FLEXIBLE_SHAPES_SPEC_VERSION"},
  {"categorical_sequences", 3, "sequence feature type (string/int64 sequences)", REF_UTILS},
  {"non_maximum_suppression", 3, "NonMaximumSuppression model", REF_UTILS},
  {"nd_array", 4, "exact-rank (ND) arrays: NN arrayInputShapeMapping / imageInputShapeMapping not RANK5",
   "coremltools _MINIMUM_NDARRAY_SPEC_VERSION; Utils.cpp hasIOS13NeuralNetworkFeatures"},
  {"nd_layers", 4, "NN layers introduced in Core ML 3 (*Broadcastable, *ND, exact-rank layers)", REF_UTILS},
  {"control_flow", 4, "NN control flow (branch, loop, loopBreak, loopContinue)", REF_UTILS},
  {"nearest_neighbors", 4, "kNearestNeighborsClassifier", "coremltools _MINIMUM_NEAREST_NEIGHBORS_SPEC_VERSION"},
  {"linked_model", 4, "LinkedModel", "coremltools _MINIMUM_LINKED_MODELS_SPEC_VERSION"},
  {"updatable", 4, "updatable model (isUpdatable)", "coremltools _MINIMUM_UPDATABLE_SPEC_VERSION"},
  {"item_similarity_recommender", 4, "ItemSimilarityRecommender", REF_UTILS},
  {"sound_analysis_preprocessing", 4, "SoundAnalysisPreprocessing", REF_UTILS},
  {"nn_ios14_layers", 5, "NN layers oneHot, cumSum, clampedReLU, argSort, pooling3d, globalPooling3d, sliceBySize, convolution3d", REF_UTILS},
  {"optional_input_default", 5, "non-zero default value for an optional multiarray input", REF_DEPLOY},
  {"int8_dynamic_quantize", 5, "int8 matmul (innerProduct / batchedMatmul int8DynamicQuantize)", REF_UTILS},
  {"serialized_model", 5, "SerializedModel (model deployment/encryption)", REF_UTILS},
  {"object_print", 5, "VisionFeaturePrint.Objects", REF_UTILS},
  {"nms_float32_io", 5, "NonMaximumSuppression with FLOAT32 inputs/outputs", REF_UTILS},
  {"ml_program", 6, "ML program (Model.mlProgram, MILSpec.Program)", "coremltools _LOWEST_ALLOWED_SPECIFICATION_VERSION_FOR_MILPROGRAM"},
  {"audio_feature_print", 6, "AudioFeaturePrint (sound print)", REF_UTILS},
  {"fp16_multiarray", 7, "FLOAT16 multiarray input/output (ArrayDataType FLOAT16)", "Utils.cpp hasIOS16Features; FeatureTypes.proto"},
  {"grayscale_float16_image", 7, "GRAYSCALE_FLOAT16 image color space", "Utils.cpp hasIOS16Features; FeatureTypes.proto"},
  {"coreml6_opset", 7, "ML program using opset CoreML6 (ios16 ops, constexpr compression)", "Utils.cpp hasIOS16Features"},
  {"compression", 7, "coremltools.optimize.coreml compression re-exports with spec >= iOS16",
   "coremltools models/utils.py _apply_graph_pass"},
  {"fp16_io_default", 7, "fp16 model I/O (coremltools uses it by default only for target >= iOS16)",
   "coremltools use_default_fp16_io"},
  {"coreml7_opset", 8, "ML program using opset CoreML7 (quantize/dequantize, resize, new op versions)", "Utils.cpp hasIOS17Features"},
  {"activation_quantization", 8, "activation quantization (W8A8) exports with spec >= iOS17",
   "coremltools models/utils.py _apply_graph_pass"},
  {"class_confidence_thresholding", 8, "ClassConfidenceThresholding model", "Utils.cpp hasIOS17Features"},
  {"scene_print_v2", 8, "VisionFeaturePrint scene revision 2", "Utils.cpp hasIOS17Features"},
  {"bert_embedding", 8, "TextClassifier / WordTagger revision 4 (BERT embedding)", "Utils.cpp hasIOS17Features"},
  {"coreml8_opset", 9, "ML program using opset CoreML8 (SDPA, states, iOS18 constexpr ops)", "Utils.cpp hasIOS18Features"},
  {"states", 9, "state features (StateType inputs, read_state/write_state)", "coreml-versions.md §2"},
  {"multiple_functions", 9, "several functions (ModelDescription.functions / defaultFunctionName)",
   "Utils.cpp hasMultiFunctions; save_multifunction sets max(spec, 9)"},
  {"empty_inputs", 9, "a model or function with zero inputs", "Utils.cpp hasEmptyInput"},
  {"multiple_enumerated_inputs", 9, "more than one input with EnumeratedShapes", "coreml-versions.md §2"},
  {"weight_dtype_16_32", 9, "weight-file dtypes int16/uint16/int32/uint32", "coremltools backend/mil/load.py should_use_weight_file"},
  {"ios18_compression", 9,
   "per-block / int4 linear quantization, per-grouped-channel or vector or 3-bit palettization, "
   "per-channel scale with LUT, joint compression",
   "coremltools optimize/coreml/_quantization_passes.py"},
  {"multilingual_bert", 9, "TextClassifier / WordTagger revision 5", "Utils.cpp hasIOS18Features"},
  {"int8_multiarray", 10, "INT8 multiarray input/output (ML programs)", "Utils.cpp hasIOS26Features; FeatureTypes.proto"},
};

size_t mlsh_spec_feature_count(void) { return sizeof features / sizeof features[0]; }

const mlsh_spec_feature *mlsh_spec_feature_at(size_t i) {
  return i < mlsh_spec_feature_count() ? &features[i] : NULL;
}

const mlsh_spec_feature *mlsh_spec_feature_find(const char *id) {
  if (!id) return NULL;
  for (size_t i = 0; i < mlsh_spec_feature_count(); i++)
    if (ci_eq(features[i].id, id)) return &features[i];
  return NULL;
}

/* ---------------------------------------------------------------- enums with a minimum spec */

static const mlsh_spec_enum array_dtypes[] = {
  {"INVALID_ARRAY_DATA_TYPE", 0, 0, "invalid"},
  {"FLOAT32", 65568, 1, NULL},
  {"DOUBLE", 65600, 1, NULL},
  {"INT32", 131104, 1, NULL},
  {"FLOAT16", 65552, 7, NULL},
  {"INT8", 131080, 10, "ML programs only"},
};

static const mlsh_spec_enum colorspaces[] = {
  {"INVALID_COLOR_SPACE", 0, 0, "invalid"},
  {"GRAYSCALE", 10, 1, NULL},
  {"RGB", 20, 1, NULL},
  {"BGR", 30, 1, NULL},
  {"GRAYSCALE_FLOAT16", 40, 7, NULL},
};

static const mlsh_spec_enum model_types[] = {
  {"pipelineClassifier", 200, 1, NULL}, {"pipelineRegressor", 201, 1, NULL},
  {"pipeline", 202, 1, "a pipeline needs the max spec over its sub-models"},
  {"glmRegressor", 300, 1, NULL}, {"supportVectorRegressor", 301, 1, NULL}, {"treeEnsembleRegressor", 302, 1, NULL},
  {"neuralNetworkRegressor", 303, 1, "coremltools writes NeuralNetwork models with spec >= 4"},
  {"bayesianProbitRegressor", 304, 3, NULL}, {"glmClassifier", 400, 1, NULL},
  {"supportVectorClassifier", 401, 1, NULL}, {"treeEnsembleClassifier", 402, 1, NULL},
  {"neuralNetworkClassifier", 403, 1, "coremltools writes NeuralNetwork models with spec >= 4"},
  {"kNearestNeighborsClassifier", 404, 4, NULL},
  {"neuralNetwork", 500, 1, "coremltools writes NeuralNetwork models with spec >= 4"},
  {"itemSimilarityRecommender", 501, 4, NULL}, {"mlProgram", 502, 6, NULL}, {"customModel", 555, 3, NULL},
  {"linkedModel", 556, 4, NULL}, {"classConfidenceThresholding", 560, 8, NULL}, {"oneHotEncoder", 600, 1, NULL},
  {"imputer", 601, 1, NULL}, {"featureVectorizer", 602, 1, NULL}, {"dictVectorizer", 603, 1, NULL},
  {"scaler", 604, 1, NULL}, {"categoricalMapping", 606, 1, NULL}, {"normalizer", 607, 1, NULL},
  {"arrayFeatureExtractor", 609, 1, NULL}, {"nonMaximumSuppression", 610, 3, NULL},
  {"identity", 900, 1, "not gated by coremltools' validator"},
  {"textClassifier", 2000, 3, "revision 2 needs 4, revision 4 needs 8, revision 5 needs 9"},
  {"wordTagger", 2001, 3, "revision 3 needs 5, revision 4 needs 8, revision 5 needs 9"},
  {"visionFeaturePrint", 2002, 3, "objects print needs 5; scene revision 2 needs 8"},
  {"soundAnalysisPreprocessing", 2003, 4, NULL}, {"gazetteer", 2004, 4, NULL}, {"wordEmbedding", 2005, 4, NULL},
  {"audioFeaturePrint", 2006, 6, NULL}, {"serializedModel", 3000, 5, NULL},
};

static const struct { const mlsh_spec_enum *v; size_t n; } enums[MLSH_SPEC_ENUM_COUNT] = {
  {array_dtypes, sizeof array_dtypes / sizeof array_dtypes[0]},
  {colorspaces, sizeof colorspaces / sizeof colorspaces[0]},
  {model_types, sizeof model_types / sizeof model_types[0]},
};

size_t mlsh_spec_enum_count(mlsh_spec_enum_kind kind) {
  return ((int)kind >= 0 && kind < MLSH_SPEC_ENUM_COUNT) ? enums[kind].n : 0;
}

const mlsh_spec_enum *mlsh_spec_enum_at(mlsh_spec_enum_kind kind, size_t i) {
  return i < mlsh_spec_enum_count(kind) ? &enums[kind].v[i] : NULL;
}

const mlsh_spec_enum *mlsh_spec_enum_find(mlsh_spec_enum_kind kind, const char *name, int value) {
  size_t n = mlsh_spec_enum_count(kind);
  for (size_t i = 0; i < n; i++) {
    const mlsh_spec_enum *e = &enums[kind].v[i];
    if (name ? ci_eq(e->name, name) : e->value == value) return e;
  }
  return NULL;
}
