#!/usr/bin/env bash
# Starts the deployment of deploy/README.md on this machine, on 127.0.0.1 only: a private
# PostgreSQL (port 55432), two `adkvoice serve` instances (8001, 8002) and nginx with
# deploy/nginx.conf in front (8080). Everything lives in a temporary directory; Ctrl-C
# stops it all and removes it.
#
#   deploy/run-local.sh
#   ADKVOICE_TOKEN=<printed token> .venv/bin/adkvoice chat --url ws://127.0.0.1:8080/ws/demo
#
# Needs PostgreSQL and nginx (apt install postgresql nginx) and adkvoice with its postgres
# extra in .venv (scripts/setup). Without Google credentials each instance answers with its
# built-in Live API emulator.
set -euo pipefail
cd "$(dirname "$0")/.."

adkvoice=${ADKVOICE:-.venv/bin/adkvoice}
python=${PYTHON:-.venv/bin/python}
pg_bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
pg_port=55432
[[ -x "$pg_bin/postgres" ]] || { echo "run-local: PostgreSQL not found; apt install postgresql" >&2; exit 1; }
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || { echo "run-local: apt install nginx" >&2; exit 1; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d /tmp/adkvoice-deploy.XXXXXX)
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
pids=()

# PostgreSQL refuses to run as root; as root it runs as the postgres user of the package.
as_pg=()
mkdir "$work/pg"
if (( EUID == 0 )); then
  as_pg=(runuser -u postgres --)
  chmod 755 "$work"
  chown postgres: "$work/pg"
fi
pg_data="$work/pg/data"

stop_all() {
  trap - EXIT INT TERM
  echo "run-local: stopping" >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -f "$pg_data/postmaster.pid" ]] && "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null
  rm -rf "$work"
}
trap stop_all EXIT INT TERM

wait_ready() {  # URL LOG: poll until the URL answers 200
  for _ in $(seq 300); do
    "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "run-local: $1 did not come up; see $2:" >&2
  tail -n 20 "$2" >&2
  exit 1
}

# 1. PostgreSQL: a password for TCP logins; the Unix socket stays in our directory.
printf '%s\n' "$password" > "$work/pg/password"
(( EUID == 0 )) && chown postgres: "$work/pg/password"
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_data" -U adkvoice --pwfile="$work/pg/password" \
  --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/postgres.log" -w \
  -o "-h 127.0.0.1 -p $pg_port -k $work/pg" start >/dev/null
"${as_pg[@]}" "$pg_bin/createdb" -h "$work/pg" -p "$pg_port" -U adkvoice adkvoice

# 2. Two instances sharing the store and the token. The store URL (with its password)
# goes in the environment, not on the command line where `ps` would show it.
export ADKVOICE_SESSIONS="postgresql://adkvoice:$password@127.0.0.1:$pg_port/adkvoice"
export ADKVOICE_TOKEN="$token"
for n in 1 2; do
  ADKVOICE_INSTANCE="serve-$n" "$adkvoice" serve --port "800$n" --log-level warning \
    >"$work/serve-$n.log" 2>&1 &
  pids+=($!)
done
for n in 1 2; do wait_ready "http://127.0.0.1:800$n/readyz" "$work/serve-$n.log"; done

# 3. nginx with the example configuration as it is; its pid, logs and temp files go in
# its own prefix directory.
mkdir "$work/nginx"
"$nginx" -p "$work/nginx" -c "$PWD/deploy/nginx.conf" -g 'daemon off;' \
  >"$work/nginx/stderr.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:8080/healthz" "$work/nginx/error.log"

cat <<EOF
adkvoice behind nginx at http://127.0.0.1:8080 (instances serve-1 on 8001 and serve-2 on
8002 with pids ${pids[0]} and ${pids[1]}, PostgreSQL on $pg_port; files in $work).
  talk:     ADKVOICE_TOKEN=$token $adkvoice chat --url ws://127.0.0.1:8080/ws/demo
  browser:  http://127.0.0.1:8080/?token=$token
  which:    curl http://127.0.0.1:8001/readyz   (and 8002: "sessions" counts conversations)
  failover: kill -9 the pid of the instance that holds your conversation, then go on typing
Ctrl-C stops everything.
EOF
wait
