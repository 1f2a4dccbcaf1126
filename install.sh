#!/bin/sh
# Installs gzcoredump as the kernel's core dump handler.
#
#   sh install.sh [--binary PATH | --launcher] [--prefix DIR] [--store DIR] [--dry-run]
#
# It installs the executable to PREFIX/bin/gzcoredump (default /usr/local),
# creates the store directory (default /var/crash) with mode 0700, and points
# /proc/sys/kernel/core_pattern at the tool. The binary is the one
# 'deno task build' made (bin/gzcoredump), or --binary PATH. Where no binary
# can be built (deno compile could not fetch its runtime), --launcher installs
# a copy of the sources and a small launcher that runs them with this
# machine's Deno, by absolute paths: the kernel starts the helper with no PATH.
set -e

prefix=/usr/local
store=/var/crash
binary=
launcher=0
dry_run=0

die() {
	echo "install.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,12s/^# \{0,1\}//p' "$0"
}

while [ $# -gt 0 ]; do
	case $1 in
	--prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
	--store) [ $# -ge 2 ] || die "--store needs a directory"; store=$2; shift 2 ;;
	--binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
	--launcher) launcher=1; shift ;;
	--dry-run) dry_run=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
done

# Runs a command, or only prints it with --dry-run.
run() {
	echo "+ $*"
	[ "$dry_run" = 1 ] || "$@"
}

# Writes $2 into file $1, or only prints it with --dry-run.
write() {
	echo "+ write '$1': $2"
	[ "$dry_run" = 1 ] || printf '%s\n' "$2" >"$1"
}

case $prefix in /*) ;; *) die "--prefix must be an absolute path, got '$prefix'" ;; esac
case $store in /*) ;; *) die "--store must be an absolute path, got '$store'" ;; esac
case "$prefix$store" in *[[:space:]]*) die "paths with spaces cannot appear in core_pattern" ;; esac
if [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
	die "must run as root: it writes /proc/sys/kernel/core_pattern (try --dry-run to see what it does)"
fi

here=$(cd "$(dirname "$0")" && pwd)
target=$prefix/bin/gzcoredump
# Kernel facts first, %E and %e last (before Linux 5.3 the kernel split their
# expansions on spaces); the tool joins a split name back.
pattern="|$target -c -p $store -P %P -u %u -g %g -s %s -t %t -r %c -D %d -H %h -E %E -a %e"
length=$(printf '%s' "$pattern" | wc -c)
[ "$length" -lt 128 ] || die "core_pattern would be $length bytes, the kernel keeps only 127: choose a shorter --prefix or --store"

if [ -z "$binary" ] && [ "$launcher" = 0 ]; then
	if [ -x "$here/bin/gzcoredump" ]; then
		binary=$here/bin/gzcoredump
	else
		die "no binary at $here/bin/gzcoredump: run 'deno task build' (it needs to download denort, or DENORT_BIN set), pass --binary PATH, or use --launcher to run the sources with the local Deno"
	fi
fi

run mkdir -p "$prefix/bin"
if [ -n "$binary" ]; then
	[ -f "$binary" ] || die "--binary '$binary' is not a file"
	run cp "$binary" "$target.new"
else
	deno=$(command -v deno) || die "--launcher needs deno on PATH (npm install -g deno@2.9.6)"
	deno=$(readlink -f "$deno")
	share=$prefix/lib/gzcoredump
	run mkdir -p "$share"
	run rm -rf "$share/lib"
	run cp -R "$here/lib" "$here/main.ts" "$here/deno.json" "$share/"
	write "$target.new" "#!/bin/sh
DENO_DIR=$share/cache DENO_NO_UPDATE_CHECK=1 exec $deno run --allow-all --no-prompt $share/main.ts \"\$@\""
fi
run chmod 755 "$target.new"
run mv -f "$target.new" "$target"
# A first run checks the install and, for the launcher, fills Deno's cache.
run "$target" --version

run mkdir -p "$store"
run chmod 700 "$store"
if [ -w /proc/sys/kernel/core_pattern ] || [ "$dry_run" = 1 ]; then
	write /proc/sys/kernel/core_pattern "$pattern"
	# With a pipe limit the kernel keeps /proc/<pid> of the crashed process
	# until the helper exits, so the tool can read its executable's .uuid
	# (through /proc/<pid>/exe), cmdline and status. 0 means no waiting.
	limit=$(cat /proc/sys/kernel/core_pipe_limit 2>/dev/null || echo 0)
	[ "$limit" != 0 ] || write /proc/sys/kernel/core_pipe_limit 16
else
	die "cannot write /proc/sys/kernel/core_pattern"
fi
echo "gzcoredump is the core dump handler; cores go to $store"
