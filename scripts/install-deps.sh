#!/usr/bin/env bash
# Installs (with apt-get) the system packages the tests and the demo need,
# but only what is missing:
#   - PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb), prefer 15
#   - python3-openpyxl for /usr/bin/python3 (tests read xlsx back with it;
#     a pyenv/venv python3 on PATH does not count)
#   - util-linux (runuser: PostgreSQL is run as the postgres user when root)
#   - openssh-server (/usr/sbin/sshd: the SFTP tests run a throwaway sshd)
# Idempotent: does nothing (not even apt-get update) when all is present.
set -euo pipefail

missing=()     # human-readable descriptions
packages=()    # apt packages to install

have_postgres() {
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
have_openpyxl() {
	[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import openpyxl' >/dev/null 2>&1
}
have_runuser() {
	command -v runuser >/dev/null 2>&1 || [ -x /usr/sbin/runuser ] || [ -x /sbin/runuser ]
}
have_sshd() {
	[ -x /usr/sbin/sshd ]
}

if ! have_postgres; then
	missing+=("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)")
	packages+=(POSTGRES) # resolved after apt-get update
fi
if ! have_openpyxl; then
	missing+=("openpyxl for /usr/bin/python3")
	packages+=(python3 python3-openpyxl)
fi
if ! have_runuser; then
	missing+=("runuser")
	packages+=(util-linux)
fi
if ! have_sshd; then
	missing+=("OpenSSH server (/usr/sbin/sshd)")
	packages+=(openssh-server)
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all dependencies present (postgresql, /usr/bin/python3 + openpyxl, runuser, sshd)"
	exit 0
fi

echo "install-deps: missing:"
printf '  - %s\n' "${missing[@]}"

if [ "$(id -u)" -ne 0 ]; then
	pkgs="${packages[*]}"
	pkgs="${pkgs/POSTGRES/postgresql-15}"
	echo "install-deps: not root; install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $pkgs" >&2
	echo "  (use 'postgresql' instead of 'postgresql-15' if your distribution has no postgresql-15)" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: apt-get not found; install the above by hand" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
apt-get update -q

for i in "${!packages[@]}"; do
	if [ "${packages[$i]}" = POSTGRES ]; then
		if apt-cache show postgresql-15 >/dev/null 2>&1; then
			packages[$i]=postgresql-15
		else
			packages[$i]=postgresql
		fi
	fi
done

echo "install-deps: installing: ${packages[*]}"
apt-get install -y -q --no-install-recommends "${packages[@]}"

# Verify.
fail=0
have_postgres || { echo "install-deps: still no /usr/lib/postgresql/*/bin/initdb" >&2; fail=1; }
have_openpyxl || { echo "install-deps: /usr/bin/python3 still cannot import openpyxl" >&2; fail=1; }
have_runuser || { echo "install-deps: still no runuser" >&2; fail=1; }
have_sshd || { echo "install-deps: still no /usr/sbin/sshd" >&2; fail=1; }
[ "$fail" -eq 0 ] || exit 1
echo "install-deps: done"
