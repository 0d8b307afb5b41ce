#!/usr/bin/env bash
# First contact, proven: the README's Quick start on a bare Debian 12.
#
#   bash tests/fresh-machine.sh [REF [REPO]]     (also: make fresh-check [REF=…])
#
# 1. Builds (or reuses from $MLSH_FRESH_CACHE, default /var/cache/mlsh-fresh) a minbase bookworm
#    root with debootstrap, from the Debian mirror this machine's own apt sources name, with only
#    make, git and ca-certificates added ($MLSH_FRESH_MIRROR overrides the mirror). The machine's
#    apt access settings (proxy, Check-Valid-Until) are copied in. The cache is keyed by suite,
#    architecture, mirror entries, access settings, package list and the recipe version below,
#    and rebuilt when older than $MLSH_FRESH_MAX_AGE_DAYS (7). Every run works on a copy of it.
# 2. Clones REF (default HEAD) of REPO (default: the repository this script lives in) inside it.
# 3. Reads the Quick-start commands out of that commit's README.md (the first ```sh block after the
#    "## Quick start" heading) and runs them one by one, as root, exactly as printed.
#    Passes only if every command exits 0 and the last one's last line says "0 failed".
# 4. Then, in the same root: make install PREFIX=<temporary prefix>, copies one example model
#    out, deletes the source tree, and runs the installed mlsh info and check on it. Installs
#    man-db (only after step 3) and checks that `man mlsh` opens the installed page.
#
# Needs root (debootstrap, mount, chroot; re-runs itself with sudo) and network access to the
# mirror. Never installs anything on the host: apt runs only inside the chroot. /proc, /sys, /dev
# and /dev/pts are bind-mounted into the chroot and unmounted on every exit path. Downloaded .debs
# are kept in the cache (a download cache only: every run still runs apt-get update and install).
set -euo pipefail

RECIPE=2                                  # bump when the base root's recipe changes
SUITE=bookworm
BASE_PKGS=make,git,ca-certificates
CACHE=${MLSH_FRESH_CACHE:-/var/cache/mlsh-fresh}
MAX_AGE_DAYS=${MLSH_FRESH_MAX_AGE_DAYS:-7}

say() { printf 'fresh-machine: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "needs root (debootstrap, mount, chroot) and sudo is not installed"
  exec sudo -E bash "$0" "$@"
fi
for tool in debootstrap chroot mount umount git sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed on this machine (apt-get install debootstrap)"
done

REF=${1:-HEAD}
REPO=${2:-$(cd "$(dirname "$0")/.." && pwd)}
GITDIR=$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) || die "$REPO is not a git repository"
SHA=$(git -C "$REPO" rev-parse --verify -q "$REF^{commit}") || die "$REF is not a commit of $REPO"

# --- the machine's own Debian sources: "URI SUITE COMPONENTS…" lines, from one-line (.list) and
#     deb822 (.sources) files; kept: bookworm, -updates and -security entries with a main component ---
host_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                       line = $i; for (j = i + 1; j <= NF && $j !~ /^#/; j++) line = line " " $j; print line }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no") { n = split(uris, u, " "); m = split(suites, s, " ");
                              for (a = 1; a <= n; a++) for (b = 1; b <= m; b++) print u[a], s[b], comps }
                            types = uris = suites = comps = ""; enabled = "" }
         /^[ \t]*$/ { flush(); next }  /^#/ { next }
         tolower($1) == "types:"      { $1 = ""; types = $0 }
         tolower($1) == "uris:"       { $1 = ""; uris = $0 }
         tolower($1) == "suites:"     { $1 = ""; suites = $0 }
         tolower($1) == "components:" { $1 = ""; comps = $0 }
         tolower($1) == "enabled:"    { enabled = tolower($2) }
         END { flush() }' "$f"
  done
}
SOURCES=$(host_sources | sed 's/^ *//; s/  */ /g' \
  | awk '$2 ~ /^'"$SUITE"'(-updates|-security|\/updates)?$/ && / main( |$)/ { print $1, $2 }' | sort -u)
MIRROR=${MLSH_FRESH_MIRROR:-$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$SOURCES")}
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
if [ -n "${MLSH_FRESH_MIRROR:-}" ] || [ -z "$SOURCES" ]; then SOURCES="$MIRROR $SUITE"; fi
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
# How this machine reaches its mirror (proxy, validity checks of snapshot mirrors): the same apt
# settings go into the chroot, and the proxy into debootstrap's environment.
APT_ACCESS=$(apt-config dump 2>/dev/null | grep -E '^Acquire::(https?::Proxy|Check-Valid-Until|Check-Date) ' || true)
proxy=$(sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' <<<"$APT_ACCESS" | head -n 1)
if [ -n "$proxy" ] && [ -z "${http_proxy:-}" ]; then export http_proxy=$proxy; fi

KEY=$(printf '%s\n' "recipe $RECIPE" "$SUITE minbase $ARCH" "$BASE_PKGS" "$MIRROR" "$SOURCES" "$APT_ACCESS" | sha256sum | cut -c1-16)
BASE=$CACHE/base-$KEY
mkdir -p "$CACHE"
# rm -rf that never crosses into a mount (a bind of /dev or /proc left behind by an interrupted run).
safe_rm() {
  local d
  for d in "$@"; do
    [ -e "$d" ] || continue
    if grep -q " $d/" /proc/self/mounts; then say "something is still mounted under $d; leaving it in place"
    else rm -rf --one-file-system "$d"; fi
  done
}

# --- the pristine base root (built once per key, atomically: build in a temp dir, then rename) ---
build_base() {
  local tmp=$CACHE/building-$KEY.$$
  say "building a minbase $SUITE root from $MIRROR (cache key $KEY)"
  debootstrap --variant=minbase --arch="$ARCH" --include="$BASE_PKGS" "$SUITE" "$tmp/root" "$MIRROR" >"$CACHE/debootstrap-$KEY.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap-$KEY.log" >&2; safe_rm "$tmp"; die "debootstrap failed (log: $CACHE/debootstrap-$KEY.log)"; }
  awk '{ print "deb", $1, $2, "main" }' <<<"$SOURCES" >"$tmp/root/etc/apt/sources.list"
  if [ -n "$APT_ACCESS" ]; then printf '%s\n' "$APT_ACCESS" >"$tmp/root/etc/apt/apt.conf.d/00mirror-access"; fi
  # A bare machine: no package lists yet, no downloaded .debs (the README's commands fetch them).
  rm -rf "$tmp/root/var/lib/apt/lists/"* "$tmp/root/var/cache/apt/archives/"*.deb
  printf '%s\n' "$SOURCES" >"$tmp/sources"
  date +%s >"$tmp/built-at"
  safe_rm "$BASE"
  mv "$tmp" "$BASE"
}
exec 9>"$CACHE/lock"
flock 9
safe_rm "$CACHE"/building-* "$CACHE"/run.*   # left by an interrupted run (we hold the lock)
if [ -f "$BASE/built-at" ] && [ $(( $(date +%s) - $(cat "$BASE/built-at") )) -lt $(( MAX_AGE_DAYS * 86400 )) ]; then
  say "reusing the cached minbase $SUITE root ($BASE)"
else
  t0=$SECONDS; build_base; say "base root built in $((SECONDS - t0)) s"
fi
for old in "$CACHE"/base-* "$CACHE"/debs-* "$CACHE"/debootstrap-*.log; do   # other keys are stale
  case $old in "$BASE"|"$CACHE/debs-$KEY"|"$CACHE/debootstrap-$KEY.log") ;; *) safe_rm "$old" ;; esac
done

# --- this run's root: a copy of the base; mounts undone and the copy removed on every exit ---
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
ROOT=$RUN/root
MOUNTS=()
LOG=$CACHE/last-run.log
cleanup() {
  local rc=$? i
  for (( i = ${#MOUNTS[@]} - 1; i >= 0; i-- )); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || say "could not unmount ${MOUNTS[i]}"
  done
  safe_rm "$RUN"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP
bind() { mkdir -p "$ROOT$1"; mount --bind "$1" "$ROOT$1"; MOUNTS+=("$ROOT$1"); }

cp -a "$BASE/root" "$ROOT"
mkdir -p "$CACHE/debs-$KEY/partial"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
bind /proc; bind /sys; bind /dev; bind /dev/pts
mkdir -p "$ROOT/var/cache/apt/archives"
mount --bind "$CACHE/debs-$KEY" "$ROOT/var/cache/apt/archives"; MOUNTS+=("$ROOT/var/cache/apt/archives")

# Everything inside runs as root in a clean environment, like a first login.
in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

git -C "$GITDIR" bundle create -q "$ROOT/root/mlsh.bundle" --all HEAD 2>/dev/null \
  || git -C "$GITDIR" bundle create "$ROOT/root/mlsh.bundle" --all HEAD >/dev/null
in_root sh -c "cd /root && git clone -q mlsh.bundle mlsh && git -C mlsh -c advice.detachedHead=false checkout -q --detach $SHA && rm mlsh.bundle" \
  || die "git clone of $SHA inside the chroot failed"

# --- the Quick start, as the README under test prints it ---
QUICK=$(git -C "$GITDIR" show "$SHA:README.md" | awk '
  /^## Quick start/ { inside = 1; next }
  inside && /^## / { exit }
  inside && !fence && /^```(sh|bash|console)?[ \t]*$/ { fence = 1; next }
  inside && fence && /^```/ { exit }
  inside && fence && $0 !~ /^[ \t]*(#|$)/ { print }')
[ -n "$QUICK" ] || die "README.md at $SHA has no \"## Quick start\" section with a \`\`\`sh block"
say "testing $SHA ($(git -C "$GITDIR" log -1 --format=%s "$SHA" | cut -c1-60))"
say "Quick start read from README.md:"
sed 's/^/    /' <<<"$QUICK" >&2
: >"$LOG"
last=""
while IFS= read -r cmd; do
  say "\$ $cmd"
  start=$SECONDS
  out=$RUN/cmd.out
  set +e
  in_root bash -c "cd /root/mlsh && $cmd" >"$out" 2>&1
  rc=$?
  set -e
  { echo "\$ $cmd"; cat "$out"; } >>"$LOG"
  last=$(tail -n 1 "$out")
  say "  exit $rc after $((SECONDS - start)) s; last line: $last"
  if [ "$rc" != 0 ]; then
    tail -n 40 "$out" | sed 's/^/    | /' >&2
    die "'$cmd' exited $rc on a bare $SUITE (full log: $LOG)"
  fi
done <<<"$QUICK"
[[ $last =~ ^[0-9]+\ passed,\ 0\ failed(,\ [0-9]+\ skipped)?$ ]] \
  || die "the test run's last line is '$last', not 'N passed, 0 failed' (full log: $LOG)"
say "PASS: the README's Quick start works on a bare $SUITE"

# --- installed, with the source tree gone: info, check, man ---
in_root bash -euc '
  prefix=$(mktemp -d /tmp/mlsh-prefix.XXXXXX)
  cd /root/mlsh
  make install PREFIX="$prefix" >/dev/null
  mkdir -p /root/models
  cp -R build/examples/transformer_encoder_good.mlpackage build/examples/mobilenet_like_nn.mlmodel /root/models/
  cd / && rm -rf /root/mlsh
  echo "$prefix" >/root/prefix' >>"$LOG" 2>&1 || die "make install failed (log: $LOG)"
PREFIX=$(cat "$ROOT/root/prefix")
expect() {   # expect WHAT PATTERN CMD...: CMD exits 0 and prints PATTERN
  local what=$1 pat=$2 out; shift 2
  out=$(in_root "$@" 2>&1) || { printf '%s\n' "$out" | tail -n 20 >&2; die "$what exited non-zero"; }
  grep -qE "$pat" <<<"$out" || { printf '%s\n' "$out" | tail -n 20 >&2; die "$what did not print /$pat/"; }
  say "ok: $what"
}
expect "installed mlsh info (.mlpackage)" 'spec version 8, mlProgram' sh -c "cd / && $PREFIX/bin/mlsh info /root/models/transformer_encoder_good.mlpackage"
expect "installed mlsh info (.mlmodel)" 'spec version [0-9]+, neuralNetwork' sh -c "cd / && $PREFIX/bin/mlsh info /root/models/mobilenet_like_nn.mlmodel"
expect "installed mlsh check --target iOS17" '^findings: 0 error' sh -c "cd / && $PREFIX/bin/mlsh check --target iOS17 /root/models/transformer_encoder_good.mlpackage"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends man-db >>"$LOG" 2>&1 \
  || die "could not install man-db in the chroot (log: $LOG)"
expect "man mlsh opens the installed page" '^NAME' env MANPATH="$PREFIX/share/man" MANPAGER=cat MANWIDTH=80 man mlsh
say "PASS: installed mlsh works without the source tree; man mlsh opens ($SECONDS s in all)"
