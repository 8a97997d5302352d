#!/usr/bin/env bash
# Stops npmgate, then the S3 server and PostgreSQL it ran on (by PID and
# pg_ctl), keeping $DATA.
source "$(dirname "$0")/../lib.sh"
stop_pidfile "$DATA/server.pid"
stop_pidfile "$DATA/versitygw.pid"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [[ -d "$DATA/pg" && -x "$PGBIN/pg_ctl" ]]; then
  if [[ "$(id -u)" = 0 ]]; then runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA/pg" -m fast stop >/dev/null 2>&1 || true
  else "$PGBIN/pg_ctl" -D "$DATA/pg" -m fast stop >/dev/null 2>&1 || true; fi
fi
