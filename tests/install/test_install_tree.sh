#!/bin/sh
# The libraries as a user outside the tree meets them: install the build tree into a prefix of
# its own (no root), then compile and run the examples with only that prefix's pkg-config.
#   test_install_tree.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1
build=$2
prefix=$build/install-tree
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
libdir=$(dirname "$(find "$prefix" -name platoon.pc | head -1)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"

# Every public header compiles alone (it includes what it needs), against each library's flags.
for h in "$prefix"/include/platoon/*.h; do
    printf '#include <platoon/%s>\nint main(void) { return 0; }\n' "$(basename "$h")" >"$work/h.c"
    cc -std=c11 -Wall -Wextra -Werror -o "$work/h" "$work/h.c" $(pkg-config --cflags --libs platoon)
done
printf '#include <platoon/raft.h>\nint main(void) { return praft_role_name(PRAFT_LEADER)[0] != 0 ? 0 : 1; }\n' \
    >"$work/raft_only.c"
cc -std=c11 -Wall -Wextra -Werror -o "$work/raft_only" "$work/raft_only.c" \
    $(pkg-config --cflags --libs platoon-raft)
"$work/raft_only"

# The examples, built as their comments say.
cc -std=c11 -Wall -Wextra -Werror -o "$work/embed_core" "$src/examples/embed-core/embed_core.c" \
    $(pkg-config --cflags --libs platoon-raft)
"$work/embed_core"

# The static library links too (pkg-config --static brings the dependencies).
cc -std=c11 -static-libgcc -o "$work/embed_core_static" "$src/examples/embed-core/embed_core.c" \
    $(pkg-config --cflags platoon-raft) "$libdir/libplatoon-raft.a" \
    $(pkg-config --static --libs-only-l platoon-raft | sed 's/-lplatoon-raft//')
"$work/embed_core_static" >/dev/null
# The key-value service, built as examples/kv/README.md says: its .proto through protoc-c,
# the server against libplatoon (plus libcrypto, for one OpenSSL call at start), the clerk
# against protobuf-c and the gRPC C core alone. Then one node serves the clerk.
kv=$src/examples/kv
protoc-c --proto_path="$kv" --c_out="$work" "$kv/kv.proto"
cc -std=c11 -c -o "$work/kv.pb-c.o" -I"$work" "$work/kv.pb-c.c" $(pkg-config --cflags libprotobuf-c)
cc -std=c11 -Wall -Wextra -Werror -I"$work" -o "$work/kv-server" "$kv/kv_server.c" \
    "$kv/kv_flags.c" "$kv/kv_service.c" "$kv/kv_sm.c" "$kv/kv_snapshot.c" "$kv/kv_codec.c" \
    "$work/kv.pb-c.o" $(pkg-config --cflags --libs platoon libcrypto)
cc -std=c11 -Wall -Wextra -Werror -I"$work" -o "$work/kv-clerk" "$kv/kv_clerk.c" \
    "$work/kv.pb-c.o" $(pkg-config --cflags --libs libprotobuf-c) -lgrpc -lgpr
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$work/kv-server" --id 1 --listen "127.0.0.1:$port" --initial-cluster "1=127.0.0.1:$port" \
    --data-dir "$work/kv-data" --insecure --log-level warn 2>"$work/kv-server.log" &
server=$!
# The clerk takes a refused connection as final: wait until the server listens (it opens its
# data directory first, which takes a while on a loaded machine).
/usr/bin/python3 - "$port" <<'EOF_WAIT' || { cat "$work/kv-server.log"; echo "kv-server never listened"; kill -TERM "$server"; exit 1; }
import socket, sys, time
deadline = time.monotonic() + 60
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.05)
EOF_WAIT
got=$("$work/kv-clerk" --endpoints "127.0.0.1:$port" put greeting hello append greeting , \
      append greeting world get greeting | tail -1) || true
kill -TERM "$server"
wait "$server" || { cat "$work/kv-server.log"; echo "kv-server did not stop cleanly"; exit 1; }
if [ "$got" != "hello,world" ]; then
    cat "$work/kv-server.log"
    echo "kv-clerk read '$got', expected 'hello,world'"
    exit 1
fi
echo "test_install_tree: ok"
