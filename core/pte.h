/* pte.h — ExecuTorch programs (.pte, and .bpte bundled programs holding one) read without flatc.
 * Contract: mlsh_pte_parse reads the ET12 flatbuffer (optional eh00 extended header of 24 or 32
 * bytes), its segments, named data, execution plans (inputs, outputs, operator names, the
 * instruction sequence) and delegates with their compile specs, and resolves each delegate's
 * payload (inline, segment, or named data through a "CMJR" reference) to a byte range of the
 * buffer. Every offset and size is checked; strings and payloads are borrowed from the buffer,
 * which must outlive the result. mlsh_pte_open maps a file read-only and shares it by refcount. */
#ifndef MLSH_PTE_H
#define MLSH_PTE_H
#include "err.h"
#include <stddef.h>
#include <stdint.h>

enum { MLSH_PTE_INLINE = 0, MLSH_PTE_SEGMENT = 1, MLSH_PTE_NAMED = 2 };
enum { MLSH_PTE_KERNEL = 1, MLSH_PTE_DELEGATE = 2, MLSH_PTE_MOVE = 3, MLSH_PTE_JUMP = 4, MLSH_PTE_FREE = 5 };

typedef struct { const char *key; const uint8_t *value; uint32_t len; } mlsh_pte_spec;

typedef struct {
  const char *id;               /* backend id, "CoreMLBackend" */
  int location;                 /* INLINE, SEGMENT, or NAMED (a CMJR reference) */
  uint32_t index;               /* as stored: backend_delegate_data or segments index */
  const uint8_t *data;          /* the resolved payload */
  uint64_t size, offset;        /* its size and offset in the program (past base for .bpte) */
  char *named_key, *function;   /* CMJR key and functionName (NAMED only) */
  mlsh_pte_spec *specs;
  uint32_t nspecs;
} mlsh_pte_delegate;

typedef struct { int kind; int32_t index; } mlsh_pte_instr; /* KERNEL: operator; DELEGATE: delegate */

typedef struct {
  const char *name;
  int32_t *inputs, *outputs;    /* value indices */
  uint8_t *input_types, *output_types; /* EValue val_type of each (5 = Tensor), 0 if unknown */
  uint32_t ninputs, noutputs, nvalues;
  const char **ops, **overloads;
  uint32_t nops;
  mlsh_pte_delegate *delegates;
  uint32_t ndelegates;
  mlsh_pte_instr *instrs;       /* every chain's instructions in order */
  uint32_t ninstrs;
} mlsh_pte_method;

typedef struct { uint64_t offset, size; } mlsh_pte_segment;
typedef struct { const char *key; uint32_t segment; } mlsh_pte_named;

typedef struct {
  int bundled;                  /* read from a .bpte's program field */
  uint64_t base;                /* offset of the program inside the buffer (bundled) */
  uint32_t header_len;          /* 0 (no eh00), 24 or 32 */
  uint64_t program_size, segment_base, segment_data_size;
  uint32_t version;
  mlsh_pte_segment *segments;
  uint32_t nsegments;
  mlsh_pte_named *named;
  uint32_t nnamed;
  mlsh_pte_method *methods;
  uint32_t nmethods;
} mlsh_pte;

/* 1: ExecuTorch program (ET followed by two digits; only ET12 parses), 2: BP08 bundled program,
 * 0: neither (head = the first n >= 8 bytes). */
int mlsh_pte_sniff(const uint8_t *head, size_t n);
int mlsh_pte_parse(const uint8_t *buf, size_t len, const char *name, mlsh_pte **out, mlsh_err *e);
void mlsh_pte_free(mlsh_pte *p);
const char *mlsh_pte_location_name(int location); /* "inline" "segment" "named_data" */

typedef struct mlsh_pte_file {
  char *path;
  const uint8_t *data;
  size_t len;
  mlsh_pte *pte;
  int refs;
} mlsh_pte_file;
int mlsh_pte_open(const char *path, mlsh_pte_file **out, mlsh_err *e);
void mlsh_pte_file_ref(mlsh_pte_file *f);
void mlsh_pte_file_unref(mlsh_pte_file *f); /* unmaps at zero */
#endif
