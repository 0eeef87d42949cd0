# Shared by the scripts: make sure PostgreSQL's server and pg_virtualenv are installed.
kappa_ensure_postgres() {
  if command -v pg_virtualenv >/dev/null 2>&1 && compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    return 0
  fi
  echo "kappa: installing PostgreSQL from Debian's packages (postgresql, postgresql-common)..." >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql postgresql-common >/dev/null
}

# What some tests use besides PostgreSQL: tmux (the console's test drives it) and openssl (the TLS
# test makes its certificates with it).
kappa_ensure_test_tools() {
  local missing=()
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "kappa: installing ${missing[*]} from Debian's packages (used by tests)..." >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A PostgreSQL cluster for the demo that outlives the command (created once, reused, started when
# stopped): `kappa-demo`, on 127.0.0.1:${KAPPA_DEMO_PGPORT:-5439}, trust authentication on loopback.
# Exports KAPPA_DATABASE_URL for it.
kappa_demo_cluster() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  local port="${KAPPA_DEMO_PGPORT:-5439}"
  local version
  version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  if ! pg_lsclusters -h | awk '{print $2}' | grep -qx kappa-demo; then
    echo "kappa: creating the demo's PostgreSQL cluster (kappa-demo, port $port)..." >&2
    $sudo pg_createcluster "$version" kappa-demo -p "$port" -- --auth-local=trust --auth-host=trust >/dev/null
  fi
  if ! pg_lsclusters -h | awk '$2 == "kappa-demo" {print $4}' | grep -qx online; then
    $sudo pg_ctlcluster "$version" kappa-demo start
  fi
  export KAPPA_DATABASE_URL="postgres://postgres@127.0.0.1:${port}/postgres"
}
