#!/bin/sh
# The Debian packages as a new machine meets them: build them (cpack, as `make deb` does),
# install them with dpkg into an empty root, then check what they put there, compile and run
# programs outside the tree against it with `pkg-config --cflags --libs`, and start platoond
# the way its systemd unit does, from the example /etc/default/platoond.
#   test_packages.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1
build=$2
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "test_packages: $*" >&2
    exit 1
}

(cd "$build" && cpack -G DEB -B "$work/packages" >"$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log"; fail "cpack failed"; }
debs=$(ls "$work"/packages/*.deb)
[ "$(echo "$debs" | wc -l)" -eq 3 ] || fail "expected 3 packages, got: $debs"

# An empty root with an empty dpkg database. Its dependencies (libc, LMDB, gRPC...) are the
# host's: dpkg is told to accept them missing in the root, and the programs below run with the
# root's libraries first and the host's after. Maintainer scripts run outside a chroot (the
# root has no shell) with DPKG_ROOT naming it, as dpkg does for a --root installation.
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
force=--force-depends,script-chrootless
[ "$(id -u)" -eq 0 ] || force=$force,not-root
# shellcheck disable=SC2086
dpkg --root="$root" $force --log=/dev/null -i $debs >"$work/dpkg.log" 2>&1 ||
    { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
for p in libplatoon1 libplatoon-dev platoon; do
    dpkg --root="$root" -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' ||
        fail "$p is not installed"
done
# Each dependency dpkg was told to overlook is installed on this host or known to its package
# lists, so the package's Depends are satisfiable (a Debian machine would pull them in).
for p in libplatoon1 platoon libplatoon-dev; do
    dpkg-deb -f "$work"/packages/"$p"_*.deb Depends | tr ',' '\n' | sed 's/(.*//; s/|.*//' |
        while read -r dep; do
            [ -z "$dep" ] || [ "$dep" = libplatoon1 ] || dpkg-query -W "$dep" >/dev/null 2>&1 ||
                apt-cache show "$dep" >/dev/null 2>&1 ||
                fail "$p depends on $dep, which is not a known package"
        done
done

# What a system administrator finds.
for f in usr/bin/platoond usr/bin/platoonctl usr/bin/platoon-inspect \
    usr/lib/systemd/system/platoond.service usr/lib/sysusers.d/platoond.conf \
    usr/share/man/man1/platoond.1 etc/default/platoond; do
    [ -e "$root/$f" ] || fail "$f is missing"
done
cmp -s "$root/etc/default/platoond" "$root/usr/share/doc/platoon/examples/platoond.env" ||
    fail "/etc/default/platoond is not the example"
if command -v systemd-sysusers >/dev/null 2>&1; then
    grep -q '^platoond:' "$root/etc/passwd" || fail "the postinst made no platoond user"
fi
unit=$root/usr/lib/systemd/system/platoond.service
for rule in NoNewPrivileges=yes StateDirectory=platoond User=platoond ProtectSystem=strict \
    EnvironmentFile=/etc/default/platoond "ExecStart=/usr/bin/platoond "; do
    grep -q "^$rule" "$unit" || fail "the unit lacks $rule"
done
# systemd's own check of the unit (its directives, the sandboxing options), run on a copy
# whose program is the root's: systemd-analyze checks that ExecStart's file exists.
if command -v systemd-analyze >/dev/null 2>&1; then
    sed "s|^ExecStart=/usr/bin/|ExecStart=$root/usr/bin/|" "$unit" >"$work/platoond.service"
    systemd-analyze verify --man=no "$work/platoond.service" >"$work/verify.log" 2>&1 ||
        { cat "$work/verify.log"; fail "systemd-analyze verify"; }
fi

# What a developer finds: pkg-config files that lead to the root's headers and libraries.
libdir=$root/usr/lib
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"
cc -std=c11 -Wall -Wextra -Werror -o "$work/embed_core" "$src/examples/embed-core/embed_core.c" \
    $(pkg-config --cflags --libs platoon-raft)
"$work/embed_core" >"$work/embed_core.log" || { cat "$work/embed_core.log"; fail "embed_core"; }
cc -std=c11 -Wall -Wextra -Werror -o "$work/hello" "$src/tests/install/hello_platoon.c" \
    $(pkg-config --cflags --libs platoon)
ldd "$work/hello" | grep -q "$libdir/libplatoon.so.1" || fail "hello does not use the root's library"
"$work/hello" "$work/hello-data"

# platoond as its unit starts it: the example environment file, with --insecure chosen (no
# certificates in a test) and a free loopback port instead of the default.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env_file=$work/platoond.env
sed -e "s/127\.0\.0\.1:7001/127.0.0.1:$port/g" \
    -e 's/^PLATOOND_SECURITY=.*/PLATOOND_SECURITY="--insecure"/' \
    "$root/etc/default/platoond" >"$env_file"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit" |
    sed -e "s|^/usr/bin/|$root/usr/bin/|" -e "s|/var/lib/platoond|$work/state|")
mkdir -p "$work/state"
(
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
    # systemd splits an unquoted $VAR on white space, as the shell does here.
    eval "exec $exec_start" >"$work/platoond.log" 2>&1
) &
pid=$!
ok=
for _ in $(seq 1 100); do
    if "$root/usr/bin/platoonctl" --endpoints "127.0.0.1:$port" --timeout 1 cluster status \
        >"$work/status.log" 2>&1; then
        ok=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$ok" ] || { cat "$work/platoond.log" "$work/status.log"; fail "platoond did not serve"; }
"$root/usr/bin/platoonctl" --endpoints "127.0.0.1:$port" vehicle update 1 --lat 48.1 \
    --lon 11.5 --speed 20 --heading 90 >/dev/null || fail "platoonctl vehicle update"
kill -TERM "$pid"
wait "$pid" || fail "platoond did not stop cleanly on SIGTERM"
pid=
echo "test_packages: ok ($(echo "$debs" | xargs -n1 basename | tr '\n' ' '))"
