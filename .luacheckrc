-- luacheck configuration (Debian lua-check): `luacheck lua rules recipes tests repl` reports zero
-- warnings. Lua 5.4; the project's globals are the ones it hands to code it runs.
std = "lua54"
max_line_length = 180
-- prose (help texts, playbook answers) stays on one line per sentence
max_string_line_length = false
max_comment_line_length = false
-- callbacks and methods keep the signature their caller uses, used or not
unused_args = false
codes = true

files["lua/mlsh/cli/main.lua"] = { globals = { "arg", "mlsh" } } -- sets the globals scripts see
files["rules/**"] = { read_globals = { "mlsh", "fallback" } }     -- the rule environment (mlsh.sandbox)
files["recipes/**"] = { read_globals = { "mlsh" } }               -- scripts run by `mlsh script.lua`
files["recipes/team-fallbacks/**"] = { read_globals = { "mlsh", "fallback" } } -- a rules folder
files["examples/**"] = { read_globals = { "mlsh" } }
-- specs reuse `out, err, code` down a sequence of runs, asserting only what each step is about
files["tests/**"] = { std = "+busted", ignore = { "311" } }
-- prose tables: one entry per line, however long the sentence
files["rules/playbooks/**"] = { max_line_length = false }
files["lua/mlsh/cli/help.lua"] = { max_line_length = false }
color = false
