#!/bin/sh
# Installs gzcoredump as the kernel's core dump handler, or removes it.
#
#   sh install.sh [--binary PATH | --launcher] [--prefix DIR] [--store DIR]
#                 [--root DIR] [--kernel VERSION] [--dry-run]
#   sh install.sh --uninstall [--prefix DIR] [--root DIR] [--dry-run]
#
# Installs the executable to PREFIX/bin/gzcoredump (default /usr/local): the
# one 'deno task build' made (bin/gzcoredump), or --binary PATH; where no
# binary can be built, --launcher installs a copy of the sources and of this
# machine's Deno, and a small launcher that runs them by absolute paths (the
# kernel starts the helper with no PATH). Creates the store (default
# /var/crash) with mode 0700, points core_pattern at the tool, sets
# core_pipe_limit so /proc/<pid> stays readable while the core is read, and
# persists both in /etc/sysctl.d/50-gzcoredump.conf. The settings it replaces
# are saved once and restored by --uninstall, which keeps the stored cores.
# Running it again changes nothing that is already right. --root DIR works
# on a fake root (for tests), --kernel VERSION writes the pattern for that
# kernel instead of this one's; --dry-run prints every action and does none.
set -e

prefix=/usr/local
store=/var/crash
binary=
launcher=0
dry_run=0
uninstall=0
root=
kernel=

die() {
	echo "install.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,20s/^# \{0,1\}//p' "$0"
}

while [ $# -gt 0 ]; do
	case $1 in
	--prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
	--store) [ $# -ge 2 ] || die "--store needs a directory"; store=$2; shift 2 ;;
	--binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
	--root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
	--launcher) launcher=1; shift ;;
	--kernel) [ $# -ge 2 ] || die "--kernel needs a version"; kernel=$2; shift 2 ;;
	--uninstall) uninstall=1; shift ;;
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

# Writes $2 into file $1 (through a temporary file, then a rename, except
# for /proc, which takes a plain write), or only prints it with --dry-run.
write() {
	echo "+ write '$1': $2"
	[ "$dry_run" = 1 ] && return 0
	case $1 in
	*/proc/sys/*) printf '%s\n' "$2" >"$1" ;;
	*) printf '%s\n' "$2" >"$1.new" && mv -f "$1.new" "$1" ;;
	esac
}

case $prefix in /*) ;; *) die "--prefix must be an absolute path, got '$prefix'" ;; esac
case $store in /*) ;; *) die "--store must be an absolute path, got '$store'" ;; esac
case "$prefix$store" in *[[:space:]]*) die "paths with spaces cannot appear in core_pattern" ;; esac
if [ -n "$root" ]; then
	case $root in /*) ;; *) die "--root must be an absolute path, got '$root'" ;; esac
	[ -d "$root" ] || die "--root '$root' is not a directory"
fi
if [ "$dry_run" = 0 ] && [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
	die "must run as root: it writes /proc/sys/kernel/core_pattern (try --dry-run to see what it does)"
fi

here=$(cd "$(dirname "$0")" && pwd)
target=$prefix/bin/gzcoredump
share=$prefix/lib/gzcoredump
pattern_file=$root/proc/sys/kernel/core_pattern
limit_file=$root/proc/sys/kernel/core_pipe_limit
sysctl_file=$root/etc/sysctl.d/50-gzcoredump.conf
state_dir=$root/var/lib/gzcoredump
saved=$state_dir/previous

if [ "$uninstall" = 1 ]; then
	[ -f "$saved" ] || die "nothing to uninstall: no saved settings at $saved"
	# The saved file holds two lines: the old core_pattern, the old limit.
	old_pattern=$(sed -n 1p "$saved")
	old_limit=$(sed -n 2p "$saved")
	write "$pattern_file" "$old_pattern"
	write "$limit_file" "$old_limit"
	run rm -f "$sysctl_file" "$root$target"
	run rm -rf "$root$share"
	run rm -f "$saved"
	[ "$dry_run" = 1 ] || rmdir "$state_dir" 2>/dev/null || true
	echo "gzcoredump removed; core_pattern is '$old_pattern' again; stored cores are kept"
	exit 0
fi

# Kernel facts first, the name last after '--': everything after it is the
# name, never an option. Before Linux 5.3 the kernel split the expansions of
# %e, %E and %h on spaces, so a process named 'x --max-age=0' could have
# passed an option; there the pattern leaves out %E and %h (the tool reads
# the program through /proc/%P/exe) and only the name, after '--', remains.
if [ -z "$kernel" ]; then
	read -r kernel </proc/sys/kernel/osrelease || die "cannot read /proc/sys/kernel/osrelease for the kernel's version"
fi
major=${kernel%%.*}
minor=${kernel#*.}
minor=${minor%%[!0-9]*}
case $major$minor in *[!0-9]* | "") die "cannot read the kernel version '$kernel'" ;; esac
if [ "$major" -gt 5 ] || { [ "$major" -eq 5 ] && [ "$minor" -ge 3 ]; }; then
	pattern="|$target -c -p $store -P %P -u %u -g %g -s %s -t %t -r %c -D %d -H %h -E %E -- %e"
else
	pattern="|$target -c -p $store -P %P -u %u -g %g -s %s -t %t -r %c -D %d -- %e"
fi
length=$(printf '%s' "$pattern" | wc -c)
[ "$length" -lt 128 ] || die "core_pattern would be $length bytes, the kernel keeps only 127: choose a shorter --prefix or --store"

if [ -z "$binary" ] && [ "$launcher" = 0 ]; then
	if [ -x "$here/bin/gzcoredump" ]; then
		binary=$here/bin/gzcoredump
	else
		die "no binary at $here/bin/gzcoredump: run 'deno task build' (it needs to download denort, or DENORT_BIN set), pass --binary PATH, or use --launcher to run the sources with the local Deno"
	fi
fi
[ -r "$pattern_file" ] || [ "$dry_run" = 1 ] || die "cannot read $pattern_file"

# Save what is replaced, once: a second install must not save its own
# settings as the ones to restore.
if [ ! -f "$saved" ]; then
	old_pattern=$(cat "$pattern_file" 2>/dev/null || echo core)
	old_limit=$(cat "$limit_file" 2>/dev/null || echo 0)
	run mkdir -p "$state_dir"
	write "$saved" "$old_pattern
$old_limit"
fi

run mkdir -p "$root$prefix/bin"
if [ -n "$binary" ]; then
	[ -f "$binary" ] || die "--binary '$binary' is not a file"
	run cp "$binary" "$root$target.new"
else
	deno=$(command -v deno) || die "--launcher needs deno on PATH (npm install -g deno@2.9.6)"
	deno=$(readlink -f "$deno")
	run mkdir -p "$root$share"
	run rm -rf "$root$share/lib"
	run cp -R "$here/lib" "$here/main.ts" "$here/deno.json" "$root$share/"
	# A copy of this Deno beside the sources: an npm upgrade or removal of
	# the one on PATH must not cost a crash.
	run cp "$deno" "$root$share/deno.new"
	run chmod 755 "$root$share/deno.new"
	run mv -f "$root$share/deno.new" "$root$share/deno"
	write "$root$target.new" "#!/bin/sh
DENO_DIR=$share/cache DENO_NO_UPDATE_CHECK=1 exec $share/deno run --allow-all --no-prompt --v8-flags=--max-semi-space-size=1,--expose-gc $share/main.ts \"\$@\""
fi
run chmod 755 "$root$target.new"
run mv -f "$root$target.new" "$root$target"
# A first run checks the install and, for the launcher, fills Deno's cache.
[ -n "$root" ] || run "$target" --version

run mkdir -p "$root$store"
run chmod 700 "$root$store"

# With a pipe limit the kernel keeps /proc/<pid> of the crashed process until
# the helper exits, so the tool can read its executable's .uuid (through
# /proc/<pid>/exe), cmdline and status. 0 means no waiting: then set 16.
limit=$(cat "$limit_file" 2>/dev/null || echo 0)
[ "$limit" != 0 ] || limit=16
write "$pattern_file" "$pattern"
write "$limit_file" "$limit"
run mkdir -p "$root/etc/sysctl.d"
write "$sysctl_file" "# Written by gzcoredump's install.sh; 'install.sh --uninstall' removes it.
kernel.core_pattern = $pattern
kernel.core_pipe_limit = $limit"
echo "gzcoredump is the core dump handler; cores go to $store"
