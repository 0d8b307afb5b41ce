/* libFuzzer harness: the interpreter on mutated small ML programs. The input is a Core ML Model
 * protobuf (.mlmodel, no weight file); if it decodes and loads as an ML program whose ops the
 * interpreter supports, it runs on zero-filled inputs (every dimension known, at most 4096
 * elements each, 64 MiB tensor budget). Any outcome but a crash is fine: errors are messages. */
#include "container.h"
#include "interp/exec.h"
#include "pbdepth.h"
#include "protoreg.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const ProtobufCMessageDescriptor *d = mlsh_proto_find("CoreML.Specification.Model");
  mlsh_err e;
  if (!d || mlsh_pb_check_depth(d, data, size, "fuzz", &e) != 0) return 0;
  CoreML__Specification__Model *m = (void *)protobuf_c_message_unpack(d, NULL, size, data);
  if (!m) return 0;
  char path[64];
  snprintf(path, sizeof path, "/tmp/fuzz_interp_%d.mlmodel", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(data, 1, size, f);
    fclose(f);
  }
  mlsh_container *c = NULL;
  it_program *p = NULL;
  it_set_budget((size_t)64 << 20);
  if (f && mlsh_container_open(path, &c, &e) == 0 && it_program_load(m, c, NULL, IT_PREC_MODEL, &p, &e) == 0 &&
      it_program_check_ops(p, "fuzz", &e) == 0) {
    it_tensor *in[64] = {0}, *out[64] = {0}, *st[64] = {0};
    int ok = p->nin <= 64 && p->nout <= 64;
    for (int i = 0; ok && i < p->nin; i++) {
      const it_type *t = &p->inputs[i].type;
      ok = t->rank >= 0 && t->dt != MLSH_DT_INVALID;
      for (int k = 0; ok && k < t->rank; k++) ok = t->shape[k] >= 0;
      if (ok) ok = it_numel(t->rank, t->shape) <= 4096;
      if (ok) ok = (in[i] = it_tensor_zeros(t->dt, t->rank, t->shape, &e)) != NULL;
    }
    if (ok) it_run(p, in, out, st, NULL, NULL, NULL, NULL, &e);
    for (int i = 0; i < 64; i++) { it_unref(in[i]); it_unref(out[i]); it_unref(st[i]); }
  }
  it_program_free(p);
  if (c) mlsh_container_close(c);
  protobuf_c_message_free_unpacked((ProtobufCMessage *)m, NULL);
  unlink(path);
  return 0;
}
