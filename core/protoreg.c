/* protoreg.c — message type lookup by name (see protoreg.h). */
#include "protoreg.h"
#include <string.h>

const ProtobufCMessageDescriptor *mlsh_proto_find(const char *name) {
  if (name[0] == '.') name++;
  for (size_t i = 0; i < mlsh_proto_registry_count; i++)
    if (strcmp(mlsh_proto_registry[i]->name, name) == 0) return mlsh_proto_registry[i];
  return NULL;
}
