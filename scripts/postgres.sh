#!/usr/bin/env bash
# Starts a local PostgreSQL for imago's PostgreSQL-backed Temporal test
# (internal/pgtest), idempotently: installs Debian's postgresql package if missing
# (scripts/system-deps.sh), creates and starts the cluster if it is not running,
# and makes sure the role imago (password imago) can log in over TCP and create
# databases. Safe to run again: it only does what is missing. Run as root (or with
# sudo); the server itself runs as the postgres user, which PostgreSQL insists on.
#
#   scripts/postgres.sh        # or: make postgres
#
# The test then connects with (override with IMAGO_TEST_POSTGRES):
#   postgres://imago:imago@127.0.0.1:5432/postgres?sslmode=disable
set -euo pipefail
cd "$(dirname "$0")/.."

ROLE=imago
PASSWORD=imago
PORT=${PGPORT:-5432}

bash scripts/system-deps.sh postgresql

as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		sudo -u postgres -- "$@"
	fi
}
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

# The newest installed server version (Debian bookworm: 15).
version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$version" ]; then
	echo "postgres: no server under /usr/lib/postgresql after installing postgresql" >&2
	exit 1
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
	echo "postgres: creating cluster $version/main on port $PORT"
	as_root pg_createcluster --port "$PORT" "$version" main
fi
status=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { print $4 }')
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { print $3 }')
if [ "$status" != "online" ]; then
	echo "postgres: starting cluster $version/main (port $port)"
	as_root pg_ctlcluster "$version" main start
fi

# Wait for it to accept connections (a fresh cluster takes a moment).
for _ in $(seq 1 100); do
	if pg_isready -q -h 127.0.0.1 -p "$port"; then
		break
	fi
	sleep 0.1
done
if ! pg_isready -q -h 127.0.0.1 -p "$port"; then
	echo "postgres: cluster $version/main does not accept connections on 127.0.0.1:$port; see /var/log/postgresql/postgresql-$version-main.log" >&2
	exit 1
fi

# The role, created or brought back in line (password, LOGIN, CREATEDB).
as_postgres psql -q -v ON_ERROR_STOP=1 -p "$port" -d postgres <<SQL
DO \$\$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
		CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
	ELSE
		ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
	END IF;
END
\$\$;
SQL

# Debian's pg_hba.conf allows password logins on 127.0.0.1; check it does.
if ! PGPASSWORD=$PASSWORD psql -q -h 127.0.0.1 -p "$port" -U "$ROLE" -d postgres -c 'SELECT 1' >/dev/null; then
	echo "postgres: role $ROLE cannot log in on 127.0.0.1:$port with its password; check pg_hba.conf of cluster $version/main" >&2
	exit 1
fi
echo "postgres: PostgreSQL $version running; IMAGO_TEST_POSTGRES=postgres://$ROLE:$PASSWORD@127.0.0.1:$port/postgres?sslmode=disable"
