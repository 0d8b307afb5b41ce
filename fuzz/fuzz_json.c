/* libFuzzer harness: the JSON reader used for Manifest.json and metadata.json. */
#include "json.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[128];
  mlsh_json *j = mlsh_json_parse((const char *)data, size, err, sizeof err);
  if (j) {
    (void)mlsh_json_get_string(j, "rootModelIdentifier");
    (void)mlsh_json_get(mlsh_json_get(j, "itemInfoEntries"), "x");
    mlsh_json_free(j);
  }
  return 0;
}
