#!/usr/bin/env bash
# testenv.sh sets up what `make test` needs on a Debian or Ubuntu machine (`make test` runs it first):
#
#   PostgreSQL  TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test (user postgres, no password)
#   Redis       TEST_REDIS_ADDR (hub) and TEST_REDIS_URL (examples/server), default 127.0.0.1:6379,
#               and redis-server on the PATH (some tests start a private one)
#   Chromium    CHROMIUM, default /usr/bin/chromium (the dashboard's browser test)
#   gcc         go test -race needs cgo (and the C library headers)
#   Go 1.26+ and Node.js 20.19+, which it only checks.
#
# It looks at everything first. When something is missing that it may not install or start (not root and no
# password-less sudo), it stops at once with one message naming each missing piece and the command for it.
# Otherwise it installs the missing Debian packages with apt-get and starts PostgreSQL and Redis where nothing
# answers at the default addresses. A server that already answers is never touched (not restarted, not
# reconfigured); a server given by TEST_DATABASE_URL / TEST_REDIS_* is only checked. Safe to run again.
set -euo pipefail

say() { printf 'testenv: %s\n' "$*"; }

# --- What the tests use ------------------------------------------------------------------------------------

PG_DSN=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
PG_LOCAL=$([ -z "${TEST_DATABASE_URL:-}" ] && echo 1 || echo 0) # 1: the default server, ours to start
CHROMIUM_BIN=${CHROMIUM:-/usr/bin/chromium}

# The Redis addresses (host:port) both variables name; the default when neither is set.
redis_addrs=()
if [ -n "${TEST_REDIS_ADDR:-}" ]; then redis_addrs+=("$TEST_REDIS_ADDR"); fi
if [ -n "${TEST_REDIS_URL:-}" ]; then
  hostport=${TEST_REDIS_URL#*://}   # strip redis://
  hostport=${hostport##*@}          # strip user:password@
  redis_addrs+=("${hostport%%/*}")  # strip /db
fi
if [ ${#redis_addrs[@]} -eq 0 ]; then redis_addrs=(127.0.0.1:6379); fi

# --- How to check each piece -------------------------------------------------------------------------------

# listening HOST PORT: something accepts TCP connections there (bash's /dev/tcp, no client needed).
listening() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

# redis_answers HOST PORT: a Redis answers PING there.
redis_answers() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "PING\r\n" >&3 && IFS= read -r l <&3 && [[ $l == +PONG* ]]' \
    _ "$1" "$2" 2>/dev/null
}

# pg_answers DSN: the tests can log in to DSN (psql, from postgresql-client).
pg_answers() { PGCONNECT_TIMEOUT=3 psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1; }

# is_local HOST: HOST is this machine, where this script may start a server.
is_local() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ]; }

# pg_cluster: "version name" of the Debian cluster on port 5432, if there is one (pg_lsclusters, postgresql-common).
pg_cluster() { pg_lsclusters --no-header 2>/dev/null | awk '$3 == 5432 { print $1, $2; exit }'; }

# --- 1. Look at everything ---------------------------------------------------------------------------------

# Root installs and starts with apt-get and pg_ctlcluster directly; a user with password-less sudo through sudo.
if [ "$(id -u)" -eq 0 ]; then
  SUDO=() can_admin=1
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n) can_admin=1
else
  SUDO=(sudo) can_admin=0
fi

packages=()   # Debian packages to install
missing=()    # lines of the message when this script cannot fix everything itself
unfixable=()  # lines of the message for what no install fixes (it names the fix)
start_pg=0    # start the local PostgreSQL cluster
start_redis=() # local Redis addresses to start

# Go and Node.js are the machine's own: Debian's packages are too old on bookworm, so only check them.
if ! command -v go >/dev/null; then
  unfixable+=("Go 1.26 or later: https://go.dev/doc/install")
fi
if ! node_version=$(node --version 2>/dev/null); then
  unfixable+=("Node.js 20.19 or later (with npm): https://nodejs.org/en/download")
elif ! printf '%s\n' v20.19.0 "$node_version" | sort -V -C; then
  unfixable+=("Node.js 20.19 or later (with npm), found $node_version: https://nodejs.org/en/download")
fi

# A C compiler and the C library's headers: go test -race needs cgo.
if ! command -v gcc >/dev/null || ! echo '#include <stdlib.h>' | gcc -E - >/dev/null 2>&1; then
  packages+=(gcc libc6-dev)
  missing+=("A C compiler for go test -race (cgo): sudo apt-get install -y gcc libc6-dev")
fi

# PostgreSQL: psql checks it; a local server is started (and set up) only when nothing listens on 5432.
if ! command -v psql >/dev/null; then
  packages+=(postgresql-client)
  missing+=("PostgreSQL client (psql): sudo apt-get install -y postgresql-client")
fi
if [ "$PG_LOCAL" = 1 ]; then
  if listening 127.0.0.1 5432; then
    # Running: never touched. Check now that the tests can log in, when psql is there to tell.
    if command -v psql >/dev/null && ! pg_answers "$PG_DSN"; then
      unfixable+=("PostgreSQL on 127.0.0.1:5432 runs but does not let user postgres into database test without a
    password. Give it trust auth for 127.0.0.1 and create the database (createdb -h 127.0.0.1 -U postgres test),
    or point TEST_DATABASE_URL at another server.")
    fi
  else
    start_pg=1
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null)" ]; then
      packages+=(postgresql)
      missing+=("PostgreSQL server: sudo apt-get install -y postgresql (then sudo make testenv sets it up)")
    elif cluster=$(pg_cluster) && [ -n "$cluster" ]; then
      missing+=("PostgreSQL is not running on 127.0.0.1:5432: sudo pg_ctlcluster $cluster start")
    else
      missing+=("PostgreSQL has no cluster on port 5432: sudo make testenv (creates and sets up one)")
    fi
  fi
elif command -v psql >/dev/null && ! pg_answers "$PG_DSN"; then
  unfixable+=("PostgreSQL at TEST_DATABASE_URL ($PG_DSN) does not answer: start it, or unset TEST_DATABASE_URL.")
fi

# Redis: redis-server must be installed in any case; a local one is started where nothing answers.
if ! command -v redis-server >/dev/null; then
  packages+=(redis-server)
  missing+=("Redis: sudo apt-get install -y redis-server")
fi
for addr in "${redis_addrs[@]}"; do
  host=${addr%:*} port=${addr##*:}
  if redis_answers "$host" "$port"; then continue; fi
  if is_local "$host"; then
    start_redis+=("$port")
  else
    unfixable+=("Redis at $addr (TEST_REDIS_ADDR / TEST_REDIS_URL) does not answer: start it, or unset the variable.")
  fi
done

# Chromium: Debian's package puts it at /usr/bin/chromium (on Ubuntu, point CHROMIUM at a Chromium or Chrome).
if [ ! -x "$CHROMIUM_BIN" ]; then
  if [ -n "${CHROMIUM:-}" ]; then
    unfixable+=("Chromium: CHROMIUM=$CHROMIUM is not an executable file.")
  else
    packages+=(chromium)
    missing+=("Chromium ($CHROMIUM_BIN): sudo apt-get install -y chromium")
  fi
fi

# --- 2. Stop at once, with one message, when this script cannot fix it all ----------------------------------

# Installing and starting PostgreSQL needs root; Redis, once installed, starts as any user.
needs_admin=$(( ${#packages[@]} > 0 || start_pg ))
if [ ${#unfixable[@]} -gt 0 ] || { [ "$needs_admin" = 1 ] && [ "$can_admin" = 0 ]; }; then
  {
    echo "make test cannot run on this machine yet. Missing:"
    if [ "$can_admin" = 0 ]; then
      for line in "${missing[@]}"; do echo "  - $line"; done
    fi
    for line in "${unfixable[@]}"; do echo "  - $line"; done
    if [ "$can_admin" = 0 ] && [ ${#missing[@]} -gt 0 ]; then
      echo "Or all of it at once (this script, as root: apt-get, then it starts and sets up the services):"
      echo "  sudo make testenv    # then: make test"
    fi
  } >&2
  exit 1
fi

# --- 3. Install the missing Debian packages -------------------------------------------------------------------

if [ ${#packages[@]} -gt 0 ]; then
  say "installing ${packages[*]} (apt-get)"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
  # The package's own start-up (where the machine allows one) may have started a cluster with password auth
  # before we set it up; it is ours, so stop it and start it below the way the tests need it.
  if [[ " ${packages[*]} " == *" postgresql "* ]] && cluster=$(pg_cluster) && [ -n "$cluster" ]; then
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect $cluster stop >/dev/null 2>&1 || true
  fi
fi

# --- 4. Start PostgreSQL, set up for the tests ----------------------------------------------------------------

if [ "$start_pg" = 1 ]; then
  # A cluster on port 5432: the one Debian's package created, or a new one of the newest installed version.
  cluster=$(pg_cluster)
  if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    say "creating PostgreSQL cluster $version main on port 5432"
    "${SUDO[@]}" pg_createcluster --port 5432 "$version" main >/dev/null
    cluster="$version main"
  fi
  read -r version name <<<"$cluster"

  # Trust auth for user postgres from this machine over TCP (the tests' URL has no password), ahead of the
  # other rules because the first matching line wins. Added once, marked so that a second run finds it.
  hba=/etc/postgresql/$version/$name/pg_hba.conf
  marker="# leadupdates tests (scripts/testenv.sh)"
  if ! "${SUDO[@]}" grep -qF "$marker" "$hba"; then
    say "allowing user postgres from 127.0.0.1 and ::1 without a password ($hba)"
    "${SUDO[@]}" sed -i "1i $marker: user postgres from this machine without a password\n\
host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust" "$hba"
  fi

  say "starting PostgreSQL $version $name on 127.0.0.1:5432"
  "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
  for _ in $(seq 1 60); do listening 127.0.0.1 5432 && break; sleep 0.25; done

  # The database the tests use, created once.
  admin=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
  if [ -z "$(psql "$admin" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'")" ]; then
    say "creating database test"
    psql "$admin" -qc 'CREATE DATABASE test'
  fi
fi

# --- 5. Start Redis where nothing answers ----------------------------------------------------------------------

# Like the Debian service, on loopback only, but keeping nothing on disk: the tests need no persistence.
for port in "${start_redis[@]}"; do
  dir=${TMPDIR:-/tmp}/leadupdates-redis-$port
  mkdir -p "$dir"
  say "starting Redis on 127.0.0.1:$port (log: $dir/redis.log)"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log"
  for _ in $(seq 1 40); do redis_answers 127.0.0.1 "$port" && break; sleep 0.25; done
done

# --- 6. Check the result ------------------------------------------------------------------------------------

failed=()
pg_answers "$PG_DSN" || failed+=("PostgreSQL: cannot log in to $PG_DSN")
for addr in "${redis_addrs[@]}"; do
  redis_answers "${addr%:*}" "${addr##*:}" || failed+=("Redis: no answer at $addr")
done
[ -x "$CHROMIUM_BIN" ] || failed+=("Chromium: not at $CHROMIUM_BIN")
if [ ${#failed[@]} -gt 0 ]; then
  printf 'testenv: still missing after the set-up:\n' >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
say "PostgreSQL, Redis and Chromium are ready"
