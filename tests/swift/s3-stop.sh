#!/usr/bin/env bash
# Stop what s3-start.sh DIR started (by the PIDs in DIR/run/*.pid, never by name), then remove DIR.
D=${1:?usage: s3-stop.sh DIR}
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -q '^[^Z]'; }   # a reaped-late zombie counts as gone
pids=()
for n in proxy object container account memcached; do
  f="$D/run/$n.pid"; [ -s "$f" ] && pids+=("$(cat "$f")")
done
if [ ${#pids[@]} -gt 0 ]; then
  kill "${pids[@]}" 2>/dev/null
  for i in $(seq 1 100); do
    a=0; for p in "${pids[@]}"; do alive "$p" && a=1; done
    [ $a = 0 ] && break; sleep 0.1
  done
  kill -9 "${pids[@]}" 2>/dev/null
fi
rm -rf "$D"
exit 0
