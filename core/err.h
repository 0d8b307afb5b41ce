/* err.h — the one error shape of the C core: a status plus a message that names the file and
 * the reason ("model.mlmodel: truncated protobuf"). Functions that can fail take an mlsh_err*
 * and return 0 on success, -1 on failure with the message filled in. */
#ifndef MLSH_ERR_H
#define MLSH_ERR_H
#include <stdarg.h>
#include <stdio.h>

typedef struct { char msg[1024]; } mlsh_err;

static inline int mlsh_fail(mlsh_err *e, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int mlsh_fail(mlsh_err *e, const char *file, const char *fmt, ...) {
  if (!e) return -1;
  int n = file ? snprintf(e->msg, sizeof e->msg, "%s: ", file) : 0;
  if (n < 0 || (size_t)n >= sizeof e->msg) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}
#endif
