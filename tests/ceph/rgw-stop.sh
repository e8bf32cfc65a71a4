#!/usr/bin/env bash
# Stop what rgw-start.sh DIR started (by the PIDs in DIR/run/*.pid), then remove DIR.
# FAST=1 sends SIGKILL at once (fine for a throw-away cluster: DIR is deleted anyway).
D=${1:?usage: rgw-stop.sh DIR}
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -q '^[^Z]'; }   # a reaped-late zombie counts as gone
stop() {
  local f="$D/run/$1.pid" p i
  [ -f "$f" ] || return 0
  p=$(cat "$f")
  kill ${FAST:+-9} "$p" 2>/dev/null || return 0
  for i in $(seq 1 100); do alive "$p" || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null; return 0
}
# one at a time, gateway first: stopping radosgw and the osd together can leave radosgw hanging
stop client.rgw.a; stop osd.0; stop mon.a
rm -rf "$D"
