# Shared by the scripts: install what is missing from Debian's packages (with sudo when not root).
kappa_apt_install() {
  [ $# -eq 0 ] && return 0
  echo "kappa: installing $* from Debian's packages..." >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL's server and pg_virtualenv, and what the build needs (kappa_ensure_libpq).
kappa_ensure_postgres() {
  local missing=()
  if ! command -v pg_virtualenv >/dev/null 2>&1 || ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=(postgresql postgresql-common)
  fi
  kappa_apt_install ${missing[@]+"${missing[@]}"}
  kappa_ensure_libpq
}

# libpq's headers and pkg-config: the driver benchmark's libpq client is one of the package's targets.
kappa_ensure_libpq() {
  local missing=()
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  [ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
  kappa_apt_install ${missing[@]+"${missing[@]}"}
}

# What some tests use besides PostgreSQL: tmux (the console's test drives it), openssl (the TLS
# test makes its certificates with it) and pg_auto_failover (the failover test's formation).
kappa_ensure_test_tools() {
  local missing=()
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v pg_autoctl >/dev/null 2>&1 || missing+=(postgresql-15-auto-failover pg-auto-failover-cli)
  kappa_apt_install ${missing[@]+"${missing[@]}"}
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
