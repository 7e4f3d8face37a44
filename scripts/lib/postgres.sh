# shellcheck shell=bash disable=SC2034 # PG_PACKAGES and PG_DSN are used by the scripts that source this
# postgres.sh: PostgreSQL 15 from Debian for Ferry's multi-agent store tests: a cluster of its own
# ("15/ferrytest" on 127.0.0.1:5433, so a site's own "main" cluster is never touched), a role
# "ferry" and a database "ferrytest" it owns. Sourced by cluster-up, cluster-down and
# cluster-status, after testcluster.sh; never run.
#
# Test infrastructure only: the ferry role's password is in cluster.json for the tests to read.

PG_PACKAGES=(postgresql-15 postgresql-client-15)
PG_VERSION=15
PG_CLUSTER=ferrytest
PG_PORT=5433
PG_ROLE=ferry
PG_PASSWORD=ferry-test-password
PG_DB=ferrytest
PG_DSN="postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable"

pg_running() {
	pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c && $4 == "online" { found = 1 } END { exit !found }'
}

pg_exists() {
	pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c { found = 1 } END { exit !found }'
}

# ensure_postgres creates (once) and starts the cluster, then makes sure the role and the database
# exist. Idempotent; about 3 s the first time, well under 1 s after.
ensure_postgres() {
	if ! pg_exists; then
		say "creating PostgreSQL cluster $PG_VERSION/$PG_CLUSTER on port $PG_PORT"
		pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" -- --auth-local=peer --auth-host=scram-sha-256 \
			>"$STATE_DIR/postgres-create.log" 2>&1 || die --log "$STATE_DIR/postgres-create.log" "pg_createcluster failed"
		# Listen on loopback only; fsync off: a test database that a crash may lose is fine, and
		# it keeps the store tests fast on a loaded machine.
		cat >>"/etc/postgresql/$PG_VERSION/$PG_CLUSTER/postgresql.conf" <<CONF
# added by ferry scripts/cluster-up (test cluster)
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
	fi
	if ! pg_running; then
		say "starting PostgreSQL $PG_VERSION/$PG_CLUSTER"
		# 9>&-: the server must not inherit the cluster lock (flock on fd 9), or it would hold it forever.
		pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start >"$STATE_DIR/postgres-start.log" 2>&1 9>&- ||
			die --log "$STATE_DIR/postgres-start.log" "PostgreSQL did not start"
	fi
	local psql=(runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres)
	if [[ $("${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE'") != 1 ]]; then
		"${psql[@]}" -c "CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
	fi
	if [[ $("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") != 1 ]]; then
		"${psql[@]}" -c "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
	fi
}

stop_postgres() {
	if pg_running; then
		say "stopping PostgreSQL $PG_VERSION/$PG_CLUSTER"
		pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast >/dev/null 2>&1 || true
	fi
}
