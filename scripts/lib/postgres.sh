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
