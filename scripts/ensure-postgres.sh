#!/usr/bin/env bash
# ensure-postgres.sh: make sure the Postgres server the tests use accepts
# connections at 127.0.0.1:5432, starting the machine's cluster if it is down.
#
# Idempotent: exits 0 at once when the server is already up. Otherwise it
# starts the Debian cluster the documented way
#   pg_ctlcluster --skip-systemctl-redirect <version> main start
# waits for it, and exits 0; it exits non-zero, saying what to do, when it
# cannot. When KEYHOLD_TEST_DATABASE_URL is set the tests use that server
# instead, and this script leaves the local one alone.
set -euo pipefail

host=127.0.0.1
port=5432
say() { echo "ensure-postgres: $*"; }

if [[ -n "${KEYHOLD_TEST_DATABASE_URL:-}" ]]; then
	say "KEYHOLD_TEST_DATABASE_URL is set; the tests use that server, not ${host}:${port}"
	exit 0
fi

# pg_isready from PATH or from the newest /usr/lib/postgresql/*/bin.
pg_isready_bin=""
if command -v pg_isready >/dev/null 2>&1; then
	pg_isready_bin=$(command -v pg_isready)
else
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn); do
		if [[ -x "$d/pg_isready" ]]; then
			pg_isready_bin="$d/pg_isready"
			break
		fi
	done
fi

ready() {
	if [[ -n "$pg_isready_bin" ]]; then
		"$pg_isready_bin" -q -h "$host" -p "$port" -t 2
	else
		# No pg_isready: settle for an open TCP port.
		(exec 3<>"/dev/tcp/${host}/${port}") 2>/dev/null
	fi
}

if ready; then
	say "Postgres is accepting connections at ${host}:${port}"
	exit 0
fi

say "Postgres is not accepting connections at ${host}:${port}; trying to start it"
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ ! -d /etc/postgresql ]]; then
	say "cannot start it: pg_ctlcluster and /etc/postgresql are missing." >&2
	say "install Postgres (apt-get install postgresql) or set KEYHOLD_TEST_DATABASE_URL to a running server" >&2
	exit 1
fi

started=0
# Newest version first; the machine normally has exactly one.
for version in $(ls /etc/postgresql | sort -rn); do
	[[ -d "/etc/postgresql/${version}/main" ]] || continue
	say "running: pg_ctlcluster --skip-systemctl-redirect ${version} main start"
	if pg_ctlcluster --skip-systemctl-redirect "${version}" main start; then
		started=1
		break
	fi
	# Exit status 2 means "already running": then it may just be starting up.
	if pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online" { found = 1 } END { exit !found }'; then
		say "cluster ${version}/main is already running; waiting for it to accept connections"
		started=1
		break
	fi
	say "pg_ctlcluster ${version} main start failed" >&2
done
if [[ $started -eq 0 ]]; then
	say "cannot start a cluster from /etc/postgresql (is there a <version>/main cluster, and are you root or postgres?)" >&2
	say "start Postgres by hand, or set KEYHOLD_TEST_DATABASE_URL to a running server" >&2
	exit 1
fi

for _ in $(seq 1 30); do
	if ready; then
		say "Postgres is accepting connections at ${host}:${port}"
		exit 0
	fi
	sleep 1
done
say "started the cluster, but nothing accepts connections at ${host}:${port} after 30s; see /var/log/postgresql/" >&2
exit 1
