#!/usr/bin/env bash
# npmgate as one replica of a scale-out deployment: published packages,
# users and tokens in PostgreSQL, tarballs and snapshots in an S3 bucket
# (Versity Gateway on local disk), the data directory only a local cache.
# Compare with peers/npmgate (the single machine) in the same run.
# Needs PostgreSQL server binaries (apt-get install postgresql) and
# versitygw (make services puts it in .tools/bin). The peer's VmHWM is
# npmgate's alone: PostgreSQL and the S3 server run beside it, as the
# external services they would be in production.
source "$(dirname "$0")/../lib.sh"
: "${UPSTREAM:?UPSTREAM is required}"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BIN="${NPMGATE_BIN:-}"
if [[ -z "$BIN" ]]; then
  BIN="$DATA/npmgate"
  (cd "${NPMGATE_SRC:-$ROOT}" && go build -o "$BIN" ./cmd/npmgate) >&2 || { echo "cannot build npmgate" >&2; exit 1; }
fi
VGW="${VERSITYGW:-$ROOT/.tools/bin/versitygw}"
[[ -x "$VGW" ]] || { echo "versitygw not found at $VGW (make services)" >&2; exit 1; }
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[[ -x "$PGBIN/initdb" ]] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
PGPORT=$((PORT + 1000)) S3PORT=$((PORT + 1001))
as_pg() { if [[ "$(id -u)" = 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

mkdir -p "$DATA/store" "$DATA/s3/npmgate"
if [[ ! -d "$DATA/pg" ]]; then
  mkdir -p "$DATA/pg"
  [[ "$(id -u)" = 0 ]] && chown postgres: "$DATA/pg"
  as_pg "$PGBIN/initdb" -D "$DATA/pg" -U npmgate --auth=trust >/dev/null
fi
[[ "$(id -u)" = 0 ]] && chown postgres: "$DATA/pg"
as_pg "$PGBIN/pg_ctl" -D "$DATA/pg" -l "$DATA/pg/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $DATA/pg -c fsync=off" start >/dev/null
# The S3 server: a bucket is a directory of its posix backend.
nohup "$VGW" --access bench --secret bench-secret-key --port "127.0.0.1:$S3PORT" posix "$DATA/s3" \
  >>"$DATA/versitygw.log" 2>&1 </dev/null &
echo $! >"$DATA/versitygw.pid"
wait_http "http://127.0.0.1:$S3PORT/" 30 "$(cat "$DATA/versitygw.pid")"

cat >"$DATA/npmgate.yaml" <<YAML
public_url: http://127.0.0.1:$PORT
connectors:
  npmjs:
    url: ${UPSTREAM%/}/
feeds:
  npm:
    default: true
    connectors: [npmjs]
database:
  url: postgres://npmgate@127.0.0.1:$PGPORT/postgres?sslmode=disable
storage:
  s3:
    endpoint: http://127.0.0.1:$S3PORT
    bucket: npmgate
    path_style: true
    access_key: bench
    secret_key: bench-secret-key
YAML
"$BIN" migrate --config "$DATA/npmgate.yaml" >&2
nohup "$BIN" serve --config "$DATA/npmgate.yaml" --listen "127.0.0.1:$PORT" --data "$DATA/store" \
  >>"$DATA/npmgate.log" 2>&1 </dev/null &
echo $! >"$DATA/server.pid"
wait_http "http://127.0.0.1:$PORT/-/ping" 60 "$(cat "$DATA/server.pid")"
echo "http://127.0.0.1:$PORT/"
