# Shared by the hack/ scripts: where cached components live and small helpers.
# Source it; it defines no side effects beyond variables and functions.

# Everything fetched or built lives under CACHE_DIR, outside the work tree, so
# every clone on a machine shares one copy. Override with TCPGW_CACHE_DIR.
CACHE_DIR="${TCPGW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tcpgateway}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# free_port prints a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# module_version GOMOD MODULE prints the version of MODULE required in GOMOD.
module_version() {
  grep -oE "(^|[[:space:]])$(printf '%s' "$2" | sed 's/[.]/\\./g') v[^[:space:]]+" "$1" | head -n1 | awk '{print $2}'
}
