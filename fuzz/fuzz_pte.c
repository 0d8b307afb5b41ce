/* libFuzzer harness: the ExecuTorch .pte/.bpte reader (core/pte.c over core/flatbuf.c), then the
 * inmemoryfs reader on every delegate payload it resolves. */
#include "inmemoryfs.h"
#include "pte.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlsh_err e;
  mlsh_pte *p;
  if (mlsh_pte_parse(data, size, "fuzz.pte", &p, &e) != 0) return 0;
  for (uint32_t m = 0; m < p->nmethods; m++)
    for (uint32_t d = 0; d < p->methods[m].ndelegates; d++) {
      const mlsh_pte_delegate *dl = &p->methods[m].delegates[d];
      mlsh_imfs *fs;
      if (mlsh_imfs_parse(dl->data, (size_t)dl->size, "payload", &fs, &e) == 0) {
        (void)mlsh_imfs_find(fs, "model.mlpackage/Manifest.json");
        mlsh_imfs_free(fs);
      }
    }
  mlsh_pte_free(p);
  return 0;
}
