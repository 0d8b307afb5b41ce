/* spec.h — Core ML specificationVersion tables (no Lua here; see lua_spec.c for the binding).
 *
 * Source: /work/shared/reference/coreml-versions.md §1–2 and coreml-format.md §1, §4, which were read
 * from apple/coremltools @ e0e2f42b (Model.proto version block, coremltools/__init__.py,
 * _deployment_compatibility.py, mlmodel/src/Utils.cpp hasIOS*Features / isIOS12NeuralNetworkLayer).
 *
 * Conventions: spec versions are 1..MLSH_SPEC_MAX; 0 means "none/unknown". Every lookup that can
 * fail takes (err, errlen) and writes a one-line reason there (err may be NULL). Nothing allocates;
 * all returned pointers are to static tables. Name matching is ASCII case-insensitive. */
#ifndef MLSH_SPEC_H
#define MLSH_SPEC_H
#include <stddef.h>

#define MLSH_SPEC_MIN 1
#define MLSH_SPEC_MAX 10
#define MLSH_SPEC_MIN_NEURALNETWORK 4 /* coremltools _LOWEST_ALLOWED_SPECIFICATION_VERSION_FOR_NEURALNETWORK */
#define MLSH_SPEC_MIN_MLPROGRAM 6     /* ..._FOR_MILPROGRAM */
#define MLSH_SPEC_MAX_FEATURES 10

typedef enum {
  MLSH_PLATFORM_IOS, MLSH_PLATFORM_MACOS, MLSH_PLATFORM_TVOS, MLSH_PLATFORM_WATCHOS, MLSH_PLATFORM_VISIONOS,
  MLSH_PLATFORM_COUNT
} mlsh_platform;

/* One row of coreml-versions.md §1. OS versions are strings as written there ("11.2", "10.13.2");
 * NULL where the table has "–" (visionOS before spec 7 and for specs 8, 9). */
typedef struct {
  int spec;
  const char *os[MLSH_PLATFORM_COUNT]; /* indexed by mlsh_platform */
  const char *os_note;                 /* e.g. visionOS 1.0 is "observed in metadata.json"; NULL if none */
  const char *coreml;                  /* Core ML version: "1", "1.2", ..., "9" */
  const char *opset;                   /* MIL opset string (Function.opset): "CoreML3".."CoreML9"; NULL before spec 4 */
  const char *mil_tag;                 /* model.mil function tag: "ios15".."ios18" ("ios26" unverified); NULL before spec 6 */
  int mil_tag_verified;                /* 0 for "ios26" (not verified in the reference) */
  int ct_target;                       /* 1 if coremltools' ct.target has a member with this value (spec >= 4) */
  const char *features[MLSH_SPEC_MAX_FEATURES]; /* headline features, NULL-terminated */
} mlsh_spec_row;

/* Row for spec 1..10, NULL otherwise. */
const mlsh_spec_row *mlsh_spec_row_get(int spec);

/* "iOS", "macOS", "tvOS", "watchOS", "visionOS"; platform from such a name (case-insensitive;
 * "iPadOS" and "macCatalyst" count as iOS), -1 if unknown. */
const char *mlsh_platform_name(mlsh_platform p);
int mlsh_platform_from_name(const char *name);

/* Deployment target -> the newest spec version that OS runs. Accepts ct.target names and aliases
 * ("iOS16", "macOS10_15", "macOS10_16", "tvOS16", "watchOS9", "visionOS1"), optional
 * "coremltools.target." / "ct.target." prefix, spaces or '_' between name and version, and minor
 * versions with '.' or '_' ("iOS 16", "ios16.4", "macOS 10.13.2", "iOS11_2"). Returns 0 and sets err
 * for unparsable strings, OS versions before Core ML, and major versions the table does not list. */
int mlsh_spec_from_target(const char *target, char *err, size_t errlen);

/* ct.target-style name of spec's OS version on a platform: (7, iOS) -> "iOS16", (4, macOS) ->
 * "macOS10_15", (2, iOS) -> "iOS11_2", (7, visionOS) -> "visionOS1". Writes into buf; returns buf or
 * NULL (err set) when spec is out of range or the platform has no version for it. */
const char *mlsh_spec_target_name(int spec, mlsh_platform p, char *buf, size_t buflen, char *err, size_t errlen);

/* "CoreML3".."CoreML9" -> 4..10 (exact opset strings, case-insensitive). */
int mlsh_spec_from_opset(const char *opset, char *err, size_t errlen);
/* "ios15".."ios18" -> 6..9, "ios26" -> 10 (unverified tag). */
int mlsh_spec_from_mil_tag(const char *tag, char *err, size_t errlen);
/* Core ML version "1", "1.2", "2" .. "9" (also "Core ML 7", "CoreML 7", "7.0") -> spec. */
int mlsh_spec_from_coreml(const char *version, char *err, size_t errlen);
/* Any of the string forms above: opset / Core ML version ("CoreML7", "Core ML 7"), model.mil tag,
 * deployment target. Pure digit strings are refused as ambiguous (spec 7 or Core ML 7?). */
int mlsh_spec_resolve(const char *s, char *err, size_t errlen);

/* ---- NeuralNetwork layer types (NeuralNetworkLayer.layer oneof) -> minimum spec ---- */

/* A condition under which a layer needs a higher spec than its base one (e.g. convolution with two
 * inputs -> 4; innerProduct with int8DynamicQuantize -> 5). Parameters are data: `value` when
 * has_value, `values` (comma-separated) when non-NULL. */
typedef struct {
  const char *id;     /* "n_inputs", "int8_dynamic_quantize", "mode", ... */
  const char *text;   /* human text */
  int has_value;
  long long value;
  const char *values;
  int min_spec;
  const char *ref;
} mlsh_layer_bump;

#define MLSH_LAYER_MAX_BUMPS 3
typedef struct {
  const char *name;  /* oneof member name as in NeuralNetwork.proto: "convolution", "addBroadcastable" */
  int field;         /* its field number (= protobuf-c layer_case value) */
  int min_spec;      /* 1, 2 (custom), 3 (resizeBilinear, cropResize), 4 (iOS13 layers), 5 (iOS14 layers) */
  const mlsh_layer_bump *bumps[MLSH_LAYER_MAX_BUMPS]; /* NULL-terminated */
} mlsh_nn_layer;

size_t mlsh_nn_layer_count(void);
const mlsh_nn_layer *mlsh_nn_layer_at(size_t i);
/* By name (exact, then case-insensitive) or by field number; NULL if unknown. */
const mlsh_nn_layer *mlsh_nn_layer_find(const char *name);
const mlsh_nn_layer *mlsh_nn_layer_by_field(int field);

/* ---- Model-level features -> minimum spec ---- */
typedef struct {
  const char *id;    /* "fp16_multiarray", "states", "ml_program", ... */
  int min_spec;
  const char *text;
  const char *ref;
} mlsh_spec_feature;

size_t mlsh_spec_feature_count(void);
const mlsh_spec_feature *mlsh_spec_feature_at(size_t i);
const mlsh_spec_feature *mlsh_spec_feature_find(const char *id);

/* Named enum values with a minimum spec: ArrayDataType, ImageFeatureType.ColorSpace, and the
 * Model.Type oneof (model kinds). */
typedef struct {
  const char *name;  /* "FLOAT16", "GRAYSCALE_FLOAT16", "mlProgram" */
  int value;         /* enum value or oneof field number */
  int min_spec;
  const char *note;  /* NULL if none */
} mlsh_spec_enum;

typedef enum { MLSH_SPEC_ENUM_ARRAY_DTYPE, MLSH_SPEC_ENUM_COLORSPACE, MLSH_SPEC_ENUM_MODEL_TYPE, MLSH_SPEC_ENUM_COUNT } mlsh_spec_enum_kind;
size_t mlsh_spec_enum_count(mlsh_spec_enum_kind kind);
const mlsh_spec_enum *mlsh_spec_enum_at(mlsh_spec_enum_kind kind, size_t i);
/* By name (case-insensitive) or, when name is NULL, by value; NULL if unknown. */
const mlsh_spec_enum *mlsh_spec_enum_find(mlsh_spec_enum_kind kind, const char *name, int value);
#endif
