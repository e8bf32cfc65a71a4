#!/usr/bin/env bash
# Throw-away single-node Ceph (1 mon + 1 osd, no mgr) + radosgw, loopback only, all state in DIR.
# Adapted from the shared Ceph RGW recipe (see tests/ceph_rgw.ts, which runs it).
# Usage: rgw-start.sh DIR [bluestore|memstore]   (DIR: an empty temp dir made by the caller)
# Writes DIR/env (export lines) and prints it. Stop with: rgw-stop.sh DIR
set -euo pipefail
D=${1:?usage: rgw-start.sh DIR [bluestore|memstore]}; STORE=${2:-bluestore}
mkdir -p "$D"/{mon.a,osd.0,run,log,rgw.a,crash}
trap 'echo "ceph-rgw-start failed; logs in $D/log" >&2; tail -n 5 "$D"/log/*.log >&2 || true' ERR
read -r MON1 MON2 RGW < <(/usr/bin/python3 -c '
import socket
ss=[socket.socket() for _ in range(3)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$D/ceph.conf" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
# no cephx: daemons and tools need no keyrings
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
# radosgw defaults to "secure" mode towards the mon, which auth=none cannot do (hangs with -13)
ms mon client mode = crc
client mount timeout = 30
rados mon op timeout = 30
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
# commit map changes fast (pool creation by radosgw-admin goes from ~10 s to ~1 s)
paxos propose interval = 0.05
paxos min wait = 0.01
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon cluster log file = $D/log/cluster.log
crash dir = $D/crash
[mon]
mon data = $D/mon.\$id
mon data avail warn = 1
mon data avail crit = 0
[osd]
osd data = $D/osd.\$id
osd objectstore = $STORE
osd memory target = 939524096
# bluestore on a sparse 20 GiB file inside osd data (only written blocks use disk)
bluestore block create = true
bluestore block size = 21474836480
bluestore fsck on mount = false
# memstore keeps every object in RAM (OSD RSS grows with data)
memstore device bytes = 4294967296
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW
rgw data = $D/rgw.a
rgw dns name = localhost
EOF
C=(-c "$D/ceph.conf")
monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]" "$D/monmap" > "$D/log/setup.log"
ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap" >> "$D/log/setup.log" 2>&1
ceph-mon "${C[@]}" -i a                      # daemonizes; pid in $D/run/mon.a.pid
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
ID=$(ceph "${C[@]}" osd new "$OSD_UUID")
ceph-osd "${C[@]}" -i "$ID" --mkfs --osd-uuid "$OSD_UUID" >> "$D/log/setup.log" 2>&1
ceph-osd "${C[@]}" -i "$ID" >> "$D/log/setup.log" 2>&1   # returns once the osd has booted
AK=wharftestaccesskey001
SK=wharftestsecretkey0000000000000000000001
# creates the rgw pools + the S3 user (before radosgw starts)
radosgw-admin "${C[@]}" user create --uid wharf --display-name wharf --access-key "$AK" --secret "$SK" > /dev/null
radosgw "${C[@]}" -n client.rgw.a            # daemonizes; pid in $D/run/client.rgw.a.pid
for i in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$RGW/" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$RGW/"
cat > "$D/env" <<EOF
export S3_ENDPOINT=http://127.0.0.1:$RGW
export AWS_ACCESS_KEY_ID=$AK
export AWS_SECRET_ACCESS_KEY=$SK
export AWS_REGION=us-east-1
EOF
cat "$D/env"
