/* readlinedl.h — GNU readline, loaded when the REPL first reads a line from a terminal rather
 * than at start-up. readline and its terminfo library cost every `mlsh` start (dynamic loading,
 * relocation) while only the interactive prompt uses them. The table holds the functions the
 * REPL calls and the addresses of the readline variables it sets, typed from readline.h and history.h.
 * Contract: mlsh_readlinedl() returns the table (loaded once, thread-safe), or NULL; then
 * mlsh_readlinedl_error() says why in one line. The library is searched as libreadline.so.8,
 * libreadline.so.7, libreadline.so (Linux), libreadline.8.dylib, libreadline.dylib (macOS), first
 * in MLSH_READLINE_DIR (the build's pkg-config libdir: Homebrew's readline is keg-only), then on
 * the loader's path; $MLSH_READLINE, when set, names the one library file to load instead. Built without the readline header (no MLSH_HAVE_READLINE), there is no
 * table: mlsh_readlinedl() is always NULL. */
#ifndef MLSH_READLINEDL_H
#define MLSH_READLINEDL_H

#ifdef MLSH_HAVE_READLINE
#include <stdio.h> /* readline.h needs FILE */
#include <readline/history.h>
#include <readline/readline.h>

typedef struct {
  __typeof__(readline) *readline;
  __typeof__(add_history) *add_history;
  __typeof__(read_history) *read_history;
  __typeof__(write_history) *write_history;
  __typeof__(history_truncate_file) *history_truncate_file;
  __typeof__(rl_completion_matches) *completion_matches;
  __typeof__(rl_crlf) *crlf;
  __typeof__(rl_replace_line) *replace_line;
  __typeof__(rl_on_new_line) *on_new_line;
  __typeof__(rl_redisplay) *redisplay;
  /* variables: the address of each */
  __typeof__(rl_line_buffer) *line_buffer;
  __typeof__(rl_catch_signals) *catch_signals;
  __typeof__(rl_attempted_completion_function) *attempted_completion_function;
  __typeof__(rl_basic_word_break_characters) *basic_word_break_characters;
  __typeof__(rl_attempted_completion_over) *attempted_completion_over;
  __typeof__(rl_completion_append_character) *completion_append_character;
} mlsh_rl_api;
#else
typedef struct mlsh_rl_api mlsh_rl_api;
#endif

const mlsh_rl_api *mlsh_readlinedl(void);
const char *mlsh_readlinedl_error(void);
#endif
