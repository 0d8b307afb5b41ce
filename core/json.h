/* json.h — a small, strict JSON reader for the few JSON files inside model containers
 * (Manifest.json, metadata.json). Input is untrusted and need not be NUL-terminated: every read
 * is bounded by len, nesting is capped (MLSH_JSON_MAX_DEPTH) and the whole tree is one allocation
 * list freed by mlsh_json_free. */
#ifndef MLSH_JSON_H
#define MLSH_JSON_H
#include <stddef.h>

#define MLSH_JSON_MAX_DEPTH 64

typedef enum { MLSH_JSON_NULL, MLSH_JSON_BOOL, MLSH_JSON_NUMBER, MLSH_JSON_STRING, MLSH_JSON_ARRAY, MLSH_JSON_OBJECT } mlsh_json_kind;

typedef struct mlsh_json {
  mlsh_json_kind kind;
  double number;            /* NUMBER, and BOOL as 0/1 */
  char *string;             /* STRING value, NUL-terminated, UTF-8 */
  char *key;                /* member name when inside an OBJECT */
  struct mlsh_json *child;  /* first element / member */
  struct mlsh_json *next;   /* next sibling */
} mlsh_json;

/* Parse; NULL on error with a message "line L: reason" in err. */
mlsh_json *mlsh_json_parse(const char *text, size_t len, char *err, size_t errlen);
void mlsh_json_free(mlsh_json *j);
/* Member of an object by key (first match), or NULL. */
const mlsh_json *mlsh_json_get(const mlsh_json *obj, const char *key);
/* String value of member key, or NULL when absent or not a string. */
const char *mlsh_json_get_string(const mlsh_json *obj, const char *key);
#endif
