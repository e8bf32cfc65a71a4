#!/usr/bin/env bash
# Throw-away single-node OpenStack Swift (proxy + account + container + object servers, 1 replica)
# with the s3api + tempauth middlewares and a private memcached, loopback only, all state in DIR.
# Adapted from the shared Swift s3api recipe (see tests/swift_s3.ts, which runs it).
# Usage: s3-start.sh DIR   (DIR: an empty temp dir made by the caller; its filesystem needs user
# xattrs: ext4, xfs, tmpfs on Linux >= 6.6). Writes DIR/env (export lines) and prints it.
# Stop with: s3-stop.sh DIR (also after a failed start: it kills whatever DIR/run/*.pid names).
# Reads /etc/swift/swift.conf (hash prefix/suffix, policies, constraints), as Swift always does.
set -euo pipefail
D=${1:?usage: s3-start.sh DIR}
mkdir -p "$D"/{srv/d1,run,log}
trap 'echo "swift-s3-start failed; logs in $D/log" >&2; tail -n 20 "$D"/log/*.log >&2 || true' ERR
read -r P A C O M < <(/usr/bin/python3 -c '
import socket
ss=[socket.socket() for _ in range(5)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
# The servers drop privileges to this user; as root (CI) that is root itself, so DIR stays usable.
U=$(id -un)
# workers = 0: one process per server, no forking. Logs: stdout/stderr of each server (-v) in
# DIR/log; the syslog copy goes to UDP 127.0.0.1:9 (discard) since there may be no /dev/log.
common="[DEFAULT]
bind_ip = 127.0.0.1
workers = 0
user = $U
swift_dir = $D
devices = $D/srv
mount_check = false
log_udp_host = 127.0.0.1
log_udp_port = 9
log_level = ${SWIFT_LOG_LEVEL:-WARNING}
"
for s in account container object; do
  case $s in account) port=$A;; container) port=$C;; object) port=$O;; esac
  printf '%s\nbind_port = %s\n[pipeline:main]\npipeline = %s-server\n[app:%s-server]\nuse = egg:swift#%s\n' \
    "$common" "$port" "$s" "$s" "$s" > "$D/$s-server.conf"
done
# Wait for the container listing update on object PUT/DELETE (default 1 s, then it goes on in the
# background): on a loaded CI box a listing right after a write must still show it.
printf 'container_update_timeout = 10\n' >> "$D/object-server.conf"
cat > "$D/proxy-server.conf" <<EOF
$common
bind_port = $P
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
# S3 access key "test:tester", secret "testing"
user_test_tester = testing .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$M
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF
# Rings in one python process (9 swift-ring-builder calls cost ~2 s each); first a check that the
# device dir takes user xattrs, where the object server keeps metadata (else every PUT is a 500).
/usr/bin/python3 - "$D" "$A" "$C" "$O" <<'PY'
import os, sys
from swift.common.ring import RingBuilder
d = sys.argv[1]
try:
    os.setxattr(f"{d}/srv/d1", "user.wharf.probe", b"1")
except OSError as e:
    sys.exit(f"{d}/srv/d1 takes no user xattrs ({e}); put the temp dir on ext4/xfs (TMPDIR)")
for name, port in zip(("account", "container", "object"), sys.argv[2:5]):
    b = RingBuilder(6, 1, 0)   # 2^6 partitions, 1 replica, min_part_hours 0
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port), "device": "d1", "weight": 1, "meta": ""})
    b.rebalance()
    b.get_ring().save(f"{d}/{name}.ring.gz")
PY
memcached -l 127.0.0.1 -p "$M" -U 0 -m 64 -u "$U" -P "$D/run/memcached.pid" -d
for s in account container object proxy; do
  "swift-$s-server" "$D/$s-server.conf" -v > "$D/log/$s.log" 2>&1 < /dev/null &
  echo $! > "$D/run/$s.pid"
done
for i in $(seq 1 600); do
  ok=1; for port in $P $A $C $O; do curl -s -o /dev/null "http://127.0.0.1:$port/healthcheck" || ok=0; done
  [ $ok = 1 ] && break
  for s in account container object proxy; do   # a server that died will never answer: fail now
    kill -0 "$(cat "$D/run/$s.pid")" 2>/dev/null || { echo "swift-$s-server exited" >&2; false; }
  done
  sleep 0.1
done
[ "$(curl -s "http://127.0.0.1:$P/healthcheck")" = OK ]
cat > "$D/env" <<EOF
export S3_ENDPOINT=http://127.0.0.1:$P
export AWS_ACCESS_KEY_ID=test:tester
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
EOF
cat "$D/env"
