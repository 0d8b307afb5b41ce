# mlsh — build, test, conformance, bench, install, demo, deps.
# Sources are discovered by glob so new core files need no Makefile edit:
#   core/*.c core/compress/*.c   C core (+ core/lua_*.c bindings: each defines luaopen_mlsh_core_<name>)
#   core/proto/*.proto           compiled by protoc-c into build/gen/
#   repl/*.c                     the mlsh program
# `make demo` and `make test` first run `deps` (installs what is missing), then re-enter make, so
# the pkg-config flags below are computed only once the packages are there (a bare Debian 12 with
# just make and git works on the first run; tests/fresh-machine.sh proves it).

PREFIX   ?= /usr/local
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN      = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE
UNAME_S  := $(shell uname -s)
# Homebrew's readline is keg-only: let pkg-config see it.
ifeq ($(UNAME_S),Darwin)
BREW_PREFIX := $(shell brew --prefix 2>/dev/null)
ifneq ($(BREW_PREFIX),)
export PKG_CONFIG_PATH := $(BREW_PREFIX)/opt/readline/lib/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
endif
endif
# Lua 5.4's pkg-config name: lua5.4 on Debian, plain lua (5.4) on Homebrew.
LUA_PC   := $(or $(shell for p in lua5.4 lua-5.4 lua54; do pkg-config --exists $$p 2>/dev/null && { echo $$p; break; }; done), \
              $(shell pkg-config --exists 'lua >= 5.4' 'lua < 5.5' 2>/dev/null && echo lua),lua5.4)
PKGS      = $(LUA_PC) libprotobuf-c libzip libpng
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# readline is not linked either: core/readlinedl.c loads it when the REPL first needs it, from
# its pkg-config libdir first. Its header decides whether the REPL has line editing at all.
READLINE_HDR  := $(or $(shell pkg-config --exists readline 2>/dev/null && echo yes),$(shell test -e /usr/include/readline/readline.h && echo yes))
READLINE_INC  := $(shell pkg-config --cflags-only-I readline 2>/dev/null)
READLINE_DIR  := $(shell pkg-config --variable=libdir readline 2>/dev/null)
READLINE_DEFS := $(if $(READLINE_HDR),-DMLSH_HAVE_READLINE $(READLINE_INC) -DMLSH_READLINE_DIR='"$(READLINE_DIR)"')
# libzip is not linked: core/zipdl.c loads it when the first zip is opened (start-up cost), from
# its pkg-config libdir first.
ZIP_LIBDIR := $(shell pkg-config --variable=libdir libzip 2>/dev/null)
# libpng likewise: core/pngdl.c loads it on the first PNG input.
PNG_LIBDIR := $(shell pkg-config --variable=libdir libpng 2>/dev/null)
LINK_LIBS  = $(filter-out -lzip -lpng%,$(PKG_LIBS))
# The mlsh program on Linux (start-up cost, bench/README.md): a PIE (full ASLR: it parses untrusted
# files), with Lua and protobuf-c linked statically when their .a files are there; it then exports
# the Lua API, as Debian's lua5.4 does, for C modules that `require` loads. core.so links as before.
ifeq ($(UNAME_S),Linux)
LUA_LIB   := $(patsubst -l%,%,$(firstword $(filter -llua%,$(PKG_LIBS))))
LUA_A     := $(if $(LUA_LIB),$(wildcard $(shell pkg-config --variable=libdir $(LUA_PC) 2>/dev/null)/lib$(LUA_LIB).a))
PBC_A     := $(wildcard $(shell pkg-config --variable=libdir libprotobuf-c 2>/dev/null)/libprotobuf-c.a)
EXE_EXPORTS = -Wl,--dynamic-list=$(B)/lua_exports.list
EXE_LDFLAGS = $(if $(LUA_A),$(EXE_EXPORTS))
endif
EXE_LIBS  = $(LUA_A) $(PBC_A) $(filter-out $(if $(LUA_A),-l$(LUA_LIB)) $(if $(PBC_A),-lprotobuf-c),$(LINK_LIBS))
LDLIBS    = $(EXE_LIBS) -ldl -lpthread -lm
# core.so gets its Lua symbols from the interpreter that loads it.
SO_LDFLAGS = $(if $(filter Darwin,$(UNAME_S)),-bundle -undefined dynamic_lookup,-shared)
# The Lua 5.4 interpreter (lua5.4 on Debian, where plain `lua` may be 5.1; lua on Homebrew), and
# $(call busted,LUA): busted from PATH run by that Lua whatever its shebang says (Debian's
# `#!/usr/bin/env lua` is 5.1 once lua-check is installed). A LuaRocks wrapper script (Homebrew)
# is looked through to the Lua script it starts.
LUA       = $$(for l in lua5.4 lua-5.4 lua54 lua; do command -v $$l >/dev/null 2>&1 && $$l -e 'assert(_VERSION == "Lua 5.4")' 2>/dev/null && { echo $$l; break; }; done)
busted    = b=$$(command -v busted) || { echo "busted is not on PATH (make deps installs it)" >&2; exit 2; }; \
            if head -n 1 "$$b" | grep -q '^\#!/bin/sh'; then b=$$(sed -n "s|.* '\([^']*/bin/busted\)' .*|\1|p" "$$b" | tail -n 1); fi; \
            $(LUA_ENV) $(1) "$$b"

B        = build
# Lua modules precompiled to bytecode (debug info kept), which the mlsh program loads instead of
# the source while the bytecode is at least as new (repl/bytecode.h); luac from Lua 5.4 (Debian's
# lua5.4 ships luac5.4). Without one, no bytecode: the sources are loaded.
LUAC     := $(or $(shell for c in luac5.4 luac-5.4 luac54 luac; do command -v $$c >/dev/null 2>&1 && $$c -v 2>&1 | grep -q '^Lua 5\.4' && { echo $$c; break; }; done),)
LUA_SRC  := $(shell find lua -name '*.lua' 2>/dev/null)
LUA_BC   = $(if $(LUAC),$(patsubst lua/%.lua,$(B)/lua/%.luac,$(LUA_SRC)))
PROTOS   = $(wildcard core/proto/*.proto)
PB_C     = $(patsubst core/proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTOS))
PB_H     = $(PB_C:.c=.h)
CORE_SRC = $(wildcard core/*.c core/compress/*.c core/interp/*.c)
CORE_OBJ = $(patsubst %.c,$(B)/obj/%.o,$(CORE_SRC)) $(patsubst $(B)/gen/%.c,$(B)/obj/gen/%.o,$(PB_C)) $(B)/obj/gen/core_modules.o $(B)/obj/gen/proto_registry.o
REPL_OBJ = $(patsubst %.c,$(B)/obj/%.o,$(wildcard repl/*.c))
BINDINGS = $(wildcard core/lua_*.c)
INC      = -Icore -I$(B)/gen $(PKG_CFLAGS) -DMLSH_LIBZIP_DIR='"$(ZIP_LIBDIR)"' -DMLSH_LIBPNG_DIR='"$(PNG_LIBDIR)"'

MLSH     = mlsh
LUA_ENV  = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/tests/support/?.lua;;" \
           LUA_CPATH="$(CURDIR)/$(B)/lua/?.so;;" MLSH_BIN="$(CURDIR)/$(MLSH)" MLSH_HOME="$(CURDIR)"

.SECONDARY:
.PHONY: all test conformance bench install demo deps examples clean check-deps sanitize fuzz valgrind \
        test-installed-binary lint fresh-check build-env deps-test
all: build-env $(MLSH) $(B)/lua/mlsh/core.so $(LUA_BC)

# A clear message instead of "lua.h: No such file or directory" when the build tools are missing.
build-env:
	@command -v $(CC) >/dev/null 2>&1 || { echo "mlsh: no C compiler ($(CC)); run 'make deps' (Debian: build-essential)" >&2; exit 2; }
	@command -v pkg-config >/dev/null 2>&1 || { echo "mlsh: pkg-config is not installed; run 'make deps'" >&2; exit 2; }
	@command -v protoc-c >/dev/null 2>&1 || { echo "mlsh: protoc-c is not installed; run 'make deps' (Debian: protobuf-c-compiler)" >&2; exit 2; }
	@pkg-config --exists $(PKGS) || { echo "mlsh: missing development packages for: $(PKGS); run 'make deps'" >&2; exit 2; }

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: core/proto/%.proto | build-env
	@mkdir -p $(B)/gen
	protoc-c --c_out=$(B)/gen -Icore/proto $<

# One table of every binding's luaopen function: the binary preloads it, core.so returns it.
$(B)/gen/core_modules.c: $(BINDINGS) Makefile
	@mkdir -p $(B)/gen
	@{ echo '/* generated by the Makefile from core/lua_*.c */'; \
	   echo '#include <lua.h>'; echo '#include <lauxlib.h>'; \
	   for f in $(BINDINGS); do n=$$(basename $$f .c); n=$${n#lua_}; echo "int luaopen_mlsh_core_$$n(lua_State *L);"; done; \
	   echo 'int luaopen_mlsh_core(lua_State *L) {'; echo '  lua_newtable(L);'; \
	   for f in $(BINDINGS); do n=$$(basename $$f .c); n=$${n#lua_}; \
	     echo "  luaL_requiref(L, \"mlsh.core.$$n\", luaopen_mlsh_core_$$n, 0); lua_setfield(L, -2, \"$$n\");"; done; \
	   echo '  return 1;'; echo '}'; } > $@

# Every message descriptor protoc-c generated, so Lua can name any type (core.proto.new "…").
$(B)/gen/proto_registry.c: $(PB_H)
	@{ echo '/* generated by the Makefile from the protoc-c headers */'; echo '#include <stddef.h>'; \
	   for h in $(notdir $(PB_H)); do echo "#include \"$$h\""; done; \
	   echo 'const ProtobufCMessageDescriptor *const mlsh_proto_registry[] = {'; \
	   sed -n 's/^extern const ProtobufCMessageDescriptor \([a-z0-9_]*\);/  \&\1,/p' $(PB_H); \
	   echo '};'; echo 'const size_t mlsh_proto_registry_count = sizeof mlsh_proto_registry / sizeof mlsh_proto_registry[0];'; } > $@

# Header dependencies: each object's .d (from -MMD -MP) lists the headers it included.
$(B)/obj/gen/%.o: $(B)/gen/%.c $(PB_H) | build-env
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -MMD -MP -fPIC $(INC) -c $< -o $@

$(B)/obj/%.o: %.c $(PB_H) | build-env
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(READLINE_DEFS) -MMD -MP -fPIC $(INC) -c $< -o $@

-include $(CORE_OBJ:.o=.d) $(REPL_OBJ:.o=.d)

$(MLSH): $(CORE_OBJ) $(REPL_OBJ) | $(B)/lua_exports.list
	$(CC) $(CFLAGS) $(EXE_LDFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(B)/lua/%.luac: lua/%.lua
	@mkdir -p $(dir $@)
	@$(LUAC) -o $@ $<

# What a statically linked Lua exports to the C modules scripts load (the API of liblua.so).
$(B)/lua_exports.list:
	@mkdir -p $(B)
	@printf '{\n  lua_*;\n  luaL_*;\n  luaopen_*;\n};\n' > $@

# The same core as a Lua 5.4 C module, for `require "mlsh"` from a plain lua5.4 (and busted).
$(B)/lua/mlsh/core.so: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SO_LDFLAGS) -o $@ $^ $(LDFLAGS) $(filter-out -llua%,$(LINK_LIBS)) -ldl -lpthread -lm

# deps first, then a new make that computes the pkg-config flags with the packages in place
# (on every core unless make was given -j itself).
JOBS = $(if $(findstring -j,$(MAKEFLAGS)),,-j$$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 1))
test: deps
	@$(MAKE) --no-print-directory $(JOBS) all
	@$(call busted,$(LUA)) --lpath="" -o tests/support/summary.lua tests

conformance: all
	@$(LUA_ENV) lua5.4 tests/conformance/run.lua $(CURDIR)/../shared/corpus
	@$(LUA_ENV) lua5.4 tests/conformance/check.lua $(CURDIR)/../shared/corpus
	@$(LUA_ENV) sh tests/conformance/protoc_decode.sh
	@$(LUA_ENV) lua5.4 tests/conformance/onnx.lua $(CURDIR)/../shared/corpus
	@$(LUA_ENV) lua5.4 tests/conformance/compress.lua $(CURDIR)/../shared/corpus
	@$(LUA_ENV) lua5.4 tests/conformance/runs.lua $(CURDIR)/../shared/corpus
	@$(LUA_ENV) lua5.4 tests/conformance/classic_nn.lua $(CURDIR)/../shared/corpus
	@$(LUA_ENV) lua5.4 tests/conformance/surgery.lua $(CURDIR)/../shared/corpus

bench: all
	@$(LUA_ENV) sh bench/run.sh

examples: all
	@mkdir -p $(B)/examples
	@for f in examples/*.lua; do [ -e "$$f" ] || continue; ./mlsh $$f $(B)/examples >/dev/null || exit 1; done

demo: deps
	@$(MAKE) --no-print-directory $(JOBS) all examples
	@sh tests/support/demo.sh

# What `make deps` installs. Optional extras, not installed: tmux (the REPL pty specs) and
# graphviz (the real-dot spec); without them those specs are reported as skipped.
DEB_DEPS  = build-essential pkg-config lua5.4 liblua5.4-dev libprotobuf-c-dev protobuf-c-compiler \
            protobuf-compiler libzip-dev lua-busted libreadline-dev libpng-dev
BREW_DEPS = lua protobuf-c protobuf libzip readline pkg-config luarocks libpng

# Sets $missing to the DEB_DEPS not installed (no recursive make: `make -n` must not reach apt-get).
missing_debs = missing=""; for p in $(DEB_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done

check-deps:
	@$(missing_debs); echo "$$missing"

# Debian: apt-get as root, or through sudo. macOS: Homebrew (its lua is 5.4) and LuaRocks for busted.
deps:
	@if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  $(missing_debs); \
	  if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	    SUDO=""; if [ "$$(id -u)" != 0 ]; then command -v sudo >/dev/null 2>&1 || { echo "make deps: run as root or install sudo (needs apt-get install$$missing)" >&2; exit 2; }; SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 2; fi; \
	elif command -v brew >/dev/null 2>&1; then \
	  for f in $(BREW_DEPS); do brew list --versions $$f >/dev/null 2>&1 || brew install $$f || exit 2; done; \
	  lua=$(LUA); [ -n "$$lua" ] && $$lua -e 'require "busted.runner"' >/dev/null 2>&1 || luarocks --lua-version 5.4 install busted || exit 2; \
	else echo "make deps: install Lua 5.4 (with headers), protobuf-c (library and protoc-c), libzip, libpng, busted, pkg-config and readline with your package manager"; fi

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/mlsh $(DESTDIR)$(PREFIX)/lib/mlsh/lua/mlsh
	install -m 755 $(MLSH) $(DESTDIR)$(PREFIX)/bin/mlsh
	install -m 755 $(B)/lua/mlsh/core.so $(DESTDIR)$(PREFIX)/lib/mlsh/lua/mlsh/core.so
	cp -R lua rules recipes $(DESTDIR)$(PREFIX)/share/mlsh/
	@# bytecode beside each source, copied after it so that it is the newer (repl/bytecode.h)
	@for f in $(patsubst $(B)/lua/%,%,$(LUA_BC)); do cp $(B)/lua/$$f $(DESTDIR)$(PREFIX)/share/mlsh/lua/$$f || exit 1; done
	@if [ -d examples ]; then cp -R examples $(DESTDIR)$(PREFIX)/share/mlsh/; fi
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 docs/mlsh.1 $(DESTDIR)$(PREFIX)/share/man/man1/mlsh.1

# The whole suite with AddressSanitizer + UndefinedBehaviorSanitizer: busted itself runs inside the
# instrumented mlsh, and every mlsh the tests start is the instrumented one. Any report fails.
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
sanitize:
	@$(if $(LUA_BC),$(MAKE) --no-print-directory $(LUA_BC))
	@$(MAKE) --no-print-directory B=build/asan MLSH=build/asan/mlsh CC=clang CFLAGS="$(SAN_FLAGS)" \
	  LDFLAGS="-fsanitize=address,undefined" build/asan/mlsh
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/support/lsan.supp \
	  $(MAKE) --no-print-directory B=build/asan MLSH=build/asan/mlsh test-installed-binary

# Run busted inside $(MLSH) (used by sanitize): the core comes from the binary, not core.so.
test-installed-binary:
	@$(call busted,./$(MLSH)) --lpath="" -o tests/support/summary.lua tests

# luacheck (Debian: lua-check) over the Lua sources, configured by the committed .luacheckrc.
lint:
	@command -v luacheck >/dev/null 2>&1 || { echo "luacheck is not installed (apt-get install lua-check)" >&2; exit 2; }
	luacheck lua rules recipes tests repl

# The README's Quick start on a bare Debian 12 chroot (root, debootstrap; REF defaults to HEAD).
fresh-check:
	@bash tests/fresh-machine.sh $(REF)

# The main CLI commands under valgrind (memory errors, definite leaks) over the test fixtures.
valgrind: all
	@sh tests/support/valgrind.sh

# libFuzzer harnesses (fuzz/*.c), each run FUZZ_SECONDS on seeds the project builds itself.
FUZZ_SECONDS ?= 30
fuzz:
	@sh fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(B) mlsh

# Browser-test dependencies (Debian's chromium for tests/report_html_spec.lua; without it those tests are pending).
deps-test:
	@command -v chromium >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
