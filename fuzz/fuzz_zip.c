/* libFuzzer harness: zipped .mlpackage containers (read in place by libzip), their manifest, spec
 * and weight file. The bytes go to a private temp file because libzip reads from paths. */
#include "container.h"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void count_file(void *ud, const char *rel, uint64_t size) {
  (void)rel;
  *(uint64_t *)ud += size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[] = "/tmp/mlsh-fuzz-zip-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 0;
  if (write(fd, data, size) != (ssize_t)size) {
    close(fd);
    unlink(path);
    return 0;
  }
  close(fd);
  mlsh_container *c;
  mlsh_err e;
  if (mlsh_container_open(path, &c, &e) == 0) {
    const uint8_t *p;
    size_t n;
    const char *name;
    uint64_t total = 0;
    (void)mlsh_container_spec(c, &p, &n, &name, &e);
    (void)mlsh_container_map(c, "@model_path/weights/weight.bin", &p, &n, NULL, &e);
    (void)mlsh_container_list(c, count_file, &total, &e);
    mlsh_container_close(c);
  }
  unlink(path);
  return 0;
}
