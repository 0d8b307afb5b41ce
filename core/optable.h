/* optable.h — MIL ops of opsets iOS15..iOS18 and what is known about their compute-unit eligibility
 * (ANE / GPU / CPU), plus the same eligibility data for NeuralNetwork layer types (their minimum spec
 * versions live in spec.h). No Lua here; lua_optable.c is the binding, lua/mlsh/optable.lua layers
 * user overrides on top.
 *
 * Sources: /work/shared/reference/coreml-versions.md §3 (op registration per opset, read from
 * coremltools ops/defs/iOS{15,16,17,18}) and ane-and-partitioners.md §1 (eligibility facts, each
 * tagged code / vendor-doc / community).
 *
 * Opsets are named by spec version: iOS15 = 6, iOS16 = 7, iOS17 = 8, iOS18 = 9 (iOS26 = 10 adds no
 * ops). Eligibility is data, never evaluated here:
 *   status   "yes"       eligible when every listed condition holds
 *            "unknown"   no specific fact; listed conditions are still necessary
 *            "unlikely"  sources say it tends not to run there (heuristic)
 *            "no"        sources say it does not run there
 *            "n/a"       not a compute op (const, constexpr_* are materialised at load time)
 *   conditions  {id, text, value | values, source, ref}; ids are listed by mlsh_condition_at(). */
#ifndef MLSH_OPTABLE_H
#define MLSH_OPTABLE_H
#include <stddef.h>

typedef enum { MLSH_UNIT_ANE, MLSH_UNIT_GPU, MLSH_UNIT_CPU, MLSH_UNIT_COUNT } mlsh_unit;
typedef enum { MLSH_SRC_CODE, MLSH_SRC_VENDOR_DOC, MLSH_SRC_COMMUNITY, MLSH_SRC_COUNT } mlsh_source;
typedef enum {
  MLSH_ELIG_YES, MLSH_ELIG_UNKNOWN, MLSH_ELIG_UNLIKELY, MLSH_ELIG_NO, MLSH_ELIG_NA, MLSH_ELIG_COUNT
} mlsh_elig_status;

const char *mlsh_unit_name(mlsh_unit u);               /* "ANE", "GPU", "CPU" */
const char *mlsh_source_name(mlsh_source s);           /* "code", "vendor-doc", "community" */
const char *mlsh_elig_status_name(mlsh_elig_status s); /* "yes", "unknown", "unlikely", "no", "n/a" */

typedef struct {
  const char *text;
  mlsh_source source;
  const char *ref; /* where it was read */
} mlsh_fact;

typedef struct {
  const char *id;     /* "max_dim", "max_rank", "dtype", "shapes", "max_dilation", ... */
  const char *text;   /* human text */
  int has_value;      /* numeric parameter in value */
  long long value;
  const char *values; /* list parameter, comma-separated ("fp16", "static,enumerated"), or NULL */
  mlsh_source source;
  const char *ref;
} mlsh_condition;

#define MLSH_ELIG_MAX_CONDS 8
#define MLSH_ELIG_MAX_FACTS 8
typedef struct {
  mlsh_elig_status status;
  const mlsh_condition *conds[MLSH_ELIG_MAX_CONDS]; /* NULL-terminated */
} mlsh_unit_elig;

typedef struct {
  const char *category; /* "conv", "elementwise", "gather", "recurrent", "constexpr", "nn_legacy", ... */
  mlsh_unit_elig unit[MLSH_UNIT_COUNT];
  const mlsh_fact *facts[MLSH_ELIG_MAX_FACTS]; /* NULL-terminated */
} mlsh_elig_profile;

typedef struct {
  const char *name;           /* MIL op type as in Operation.type: "conv" */
  int introduced;             /* spec of the opset that introduced it: 6..9 */
  unsigned revised;           /* bit (1u << spec) set for each opset with a new version */
  const mlsh_elig_profile *elig;
  const char *note;           /* NULL or a short note (signature, serialisation) */
} mlsh_op;

size_t mlsh_op_count(void);
const mlsh_op *mlsh_op_at(size_t i);      /* sorted by name */
const mlsh_op *mlsh_op_find(const char *name); /* exact name; NULL if unknown */
/* 1 if op is defined in the opset of spec (introduced <= spec). */
int mlsh_op_available(const mlsh_op *op, int spec);
/* Spec of the op version an opset uses (the newest version <= spec), 0 if not available. */
int mlsh_op_version_at(const mlsh_op *op, int spec);
/* What changed in the version introduced at spec (NULL if no note or no such version). */
const char *mlsh_op_revision_note(const mlsh_op *op, int spec);

/* Eligibility of a NeuralNetwork layer type (spec.h names, e.g. "gather", "addBroadcastable");
 * NULL if the layer is unknown. */
const mlsh_elig_profile *mlsh_layer_elig(const char *layer_name);

/* ---- per-chip column: Neural Engine generations (chip families) ----
 * Families, oldest first: A13 (M1), A14 (M2), A15 (M3), A16 (A16/A17/A18, M4/M5). Per family an op is
 *   native    runs on that generation's Neural Engine
 *   emulated  reaches the Neural Engine through a slower software route (different rounding)
 *   walled    that generation's Neural Engine cannot run it (codegen rejects it)
 *   unknown   no per-chip fact
 * A chip condition carries one numeric limit per family (e.g. fp16 conv kernel width 13/13/13/15).
 * Every column and condition names its source. */
typedef enum { MLSH_CHIP_A13, MLSH_CHIP_A14, MLSH_CHIP_A15, MLSH_CHIP_A16, MLSH_CHIP_COUNT } mlsh_chip;
typedef enum {
  MLSH_CHIP_UNKNOWN, MLSH_CHIP_NATIVE, MLSH_CHIP_EMULATED, MLSH_CHIP_WALLED, MLSH_CHIP_STATUS_COUNT
} mlsh_chip_status;

const char *mlsh_chip_name(mlsh_chip c);                    /* "A13", "A14", "A15", "A16" */
const char *mlsh_chip_status_name(mlsh_chip_status s);      /* "unknown", "native", "emulated", "walled" */

typedef struct {
  const char *id;   /* "max_kernel_width", "max_axis" */
  const char *text;
  long long value[MLSH_CHIP_COUNT];
  mlsh_source source;
  const char *ref;
} mlsh_chip_condition;

#define MLSH_CHIP_MAX_CONDS 4
typedef struct {
  mlsh_chip_status status[MLSH_CHIP_COUNT];
  const char *note; /* NULL or what the source says (the route, the rejection) */
  mlsh_source source;
  const char *ref;
  const mlsh_chip_condition *conds[MLSH_CHIP_MAX_CONDS]; /* NULL-terminated */
} mlsh_chip_column;

/* The op's per-chip column; never NULL (every status "unknown" when no per-chip fact is known). */
const mlsh_chip_column *mlsh_op_chips(const mlsh_op *op);
/* Chip conditions that hold for every op on the Neural Engine (axis extents). */
size_t mlsh_chip_general_condition_count(void);
const mlsh_chip_condition *mlsh_chip_general_condition_at(size_t i);

/* The condition vocabulary (one entry per distinct condition) and facts that apply to every op. */
size_t mlsh_condition_count(void);
const mlsh_condition *mlsh_condition_at(size_t i);
size_t mlsh_general_fact_count(void);
const mlsh_fact *mlsh_general_fact_at(size_t i);
#endif
