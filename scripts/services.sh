#!/usr/bin/env bash
# Starts and stops the real services relctl's tests, README demo and CI use:
# a private Docker engine (no bridge, no iptables, unix socket under a temp dir),
# an open Distribution registry, an htpasswd-protected one and one with Docker
# Hub's token auth (its token server runs inside the e2e tests), all on
# 127.0.0.1, and an sshd on 127.0.0.1 for ssh git remotes.
#
#   scripts/services.sh start   # install what is missing, start, write $STATE/env
#   scripts/services.sh env     # print the exports for a shell: eval "$(scripts/services.sh env)"
#   scripts/services.sh status  # exit 0 if all of them are running
#   scripts/services.sh stop    # stop exactly what start started, by process id
#   scripts/services.sh clean   # stop, then delete their images, build cache and blobs
#   scripts/services.sh diagnose  # after failed tests: which service died, and how (its log)
#
# State lives in RELCTL_SERVICES_DIR (default /tmp/relctl-services).
set -euo pipefail

STATE=${RELCTL_SERVICES_DIR:-/tmp/relctl-services}
REG_PORT=${RELCTL_REGISTRY_PORT:-5055}
SSH_PORT=${RELCTL_SSH_PORT:-5057}
TOKEN_PORT=${RELCTL_TOKEN_REGISTRY_PORT:-5059}
TOKEN_SERVER_PORT=${RELCTL_TOKEN_SERVER_PORT:-5060}
TLS_PORT=${RELCTL_TLS_ENGINE_PORT:-5058}
AUTH_PORT=${RELCTL_AUTH_REGISTRY_PORT:-5056}

log() { printf 'services: %s\n' "$*" >&2; }

need_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  [ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing+=(busybox-static)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v curl >/dev/null || missing+=(curl)
  # Credential-helper tests: docker-credential-pass over pass and a throwaway gpg key.
  command -v docker-credential-pass >/dev/null || missing+=(golang-docker-credential-helpers)
  command -v pass >/dev/null || missing+=(pass)
  command -v gpg >/dev/null || missing+=(gnupg)
  # ssh remotes: a test sshd on 127.0.0.1 with its own host key and config.
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-agent >/dev/null || missing+=(openssh-client)
  # The dashboard's browser test: headless Chromium renders serve's page.
  command -v chromium >/dev/null || missing+=(chromium)
  # Multi-platform releases: an independent reader of image indexes.
  command -v skopeo >/dev/null || missing+=(skopeo)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d keeps the package from starting the system dockerd (which would create docker0).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # wait_for DESCRIPTION COMMAND...
  local what=$1; shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "$what did not come up; see $STATE/*.log"
  tail -n 30 "$STATE"/*.log >&2 || true
  return 1
}

start_dockerd() { # start_dockerd [N [ARGS...]]: engine N ("", 2 or 3), its own data root, exec root and socket
  local n=${1:-}
  local extra=("${@:2}")
  if alive "$STATE/dockerd$n.pid"; then return; fi
  mkdir -p "$STATE/docker$n-data" "$STATE/docker$n-exec"
  local driver=${RELCTL_STORAGE_DRIVER:-}
  local args=(--bridge=none --iptables=false --ip-forward=false --ip-masq=false --ip6tables=false
    --userland-proxy=false
    --data-root "$STATE/docker$n-data" --exec-root "$STATE/docker$n-exec"
    --pidfile "$STATE/dockerd$n.pid" -H "unix://$STATE/docker$n.sock" ${extra[@]+"${extra[@]}"})
  if [ -n "$driver" ]; then args+=(--storage-driver "$driver"); fi
  setsid dockerd "${args[@]}" >"$STATE/dockerd$n.log" 2>&1 < /dev/null &
  echo $! >"$STATE/dockerd$n.launcher.pid"
  if ! wait_for "dockerd$n" curl -sf --unix-socket "$STATE/docker$n.sock" http://localhost/_ping; then
    if [ -z "$driver" ]; then
      log "retrying dockerd$n with the vfs storage driver"
      stop_pid "$STATE/dockerd$n.launcher.pid"
      RELCTL_STORAGE_DRIVER=vfs start_dockerd "$n" ${extra[@]+"${extra[@]}"}
      return
    fi
    return 1
  fi
}

start_registry() { # start_registry NAME PORT [auth section, YAML flow style]
  local name=$1 port=$2 auth=${3:-}
  if alive "$STATE/$name.pid"; then return; fi
  mkdir -p "$STATE/$name-data"
  {
    echo "version: 0.1"
    echo "log: { level: info, accesslog: { disabled: false } }"
    echo "storage: { filesystem: { rootdirectory: $STATE/$name-data }, delete: { enabled: true } }"
    echo "http: { addr: 127.0.0.1:$port }"
    if [ -n "$auth" ]; then
      echo "auth: $auth"
    fi
  } >"$STATE/$name.yml"
  setsid docker-registry serve "$STATE/$name.yml" >"$STATE/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/$name.pid"
  wait_for "registry $name" curl -s -o /dev/null "http://127.0.0.1:$port/v2/"
}

token_key() { # the key and certificate a test token server signs registry tokens with (x5c)
  local d="$STATE/token"
  [ -f "$d/cert.pem" ] && return
  mkdir -p "$d" && chmod 700 "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj /CN=relctl-test-token-issuer \
    -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
  # jsonwebtoken reads PKCS#8, which openssl req writes for EC keys.
}

tls_certs() { # a CA, the engine's certificate for 127.0.0.1, and a client certificate (docker --tlsverify)
  local d="$STATE/tls"
  [ -f "$d/client/key.pem" ] && return
  mkdir -p "$d/client"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj /CN=relctl-test-ca \
    -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$d/server-key.pem" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial -days 3650 \
    -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=relctl-test-client \
    -keyout "$d/client/key.pem" -out "$d/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial -days 3650 \
    -extfile "$d/client.ext" -out "$d/client/cert.pem" 2>/dev/null
  cp "$d/ca.pem" "$d/client/ca.pem"
}

start_sshd() { # the remote side of ssh git remotes: its own host key, config, authorized key
  if alive "$STATE/sshd.pid"; then return; fi
  local d="$STATE/ssh"
  mkdir -p "$d" /run/sshd
  [ -f "$d/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C relctl-test-host -f "$d/host_key"
  [ -f "$d/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C relctl-test-client -f "$d/client_key"
  cp "$d/client_key.pub" "$d/authorized_keys"
  chmod 600 "$d/authorized_keys"
  cat >"$d/sshd_config" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PidFile $STATE/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
CONF
  /usr/sbin/sshd -f "$d/sshd_config" -E "$STATE/sshd.log"
  wait_for sshd bash -c "exec 3<>/dev/tcp/127.0.0.1/$SSH_PORT"
}

write_env() {
  cat >"$STATE/env" <<ENV
export DOCKER_HOST=unix://$STATE/docker.sock
export RELCTL_TEST_DOCKER2_HOST=unix://$STATE/docker2.sock
export RELCTL_TEST_REGISTRY=127.0.0.1:$REG_PORT
export RELCTL_TEST_REGISTRY_LOG=$STATE/registry.log
export RELCTL_TEST_AUTH_REGISTRY=127.0.0.1:$AUTH_PORT
export RELCTL_TEST_AUTH_USER=relctl
export RELCTL_TEST_AUTH_PASSWORD=$(cat "$STATE/auth-password")
export RELCTL_TEST_TOKEN_REGISTRY=127.0.0.1:$TOKEN_PORT
export RELCTL_TEST_TOKEN_SERVER_PORT=$TOKEN_SERVER_PORT
export RELCTL_TEST_TOKEN_KEY=$STATE/token/key.pem
export RELCTL_TEST_TOKEN_CERT=$STATE/token/cert.pem
export RELCTL_TEST_BUSYBOX=$(command -v busybox)
export RELCTL_TEST_SSH_PORT=$SSH_PORT
export RELCTL_TEST_TLS_DOCKER_HOST=tcp://127.0.0.1:$TLS_PORT
export RELCTL_TEST_TLS_CERT_PATH=$STATE/tls/client
export RELCTL_TEST_SSH_KEY=$STATE/ssh/client_key
export RELCTL_TEST_SSH_HOST_KEY=$STATE/ssh/host_key.pub
ENV
  chmod 600 "$STATE/env"
}

start() {
  need_packages
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  start_dockerd
  start_dockerd 2       # an empty second engine: offline bundles are imported into it
  tls_certs             # a third engine also listening on 127.0.0.1 over TLS, as DOCKER_TLS_VERIFY reaches it
  start_dockerd 3 -H "tcp://127.0.0.1:$TLS_PORT" --tlsverify --tlscacert "$STATE/tls/ca.pem" \
    --tlscert "$STATE/tls/server.pem" --tlskey "$STATE/tls/server-key.pem"
  start_registry registry "$REG_PORT"
  if [ ! -f "$STATE/auth-password" ]; then
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/auth-password"
  fi
  htpasswd -Bbc "$STATE/htpasswd" relctl "$(cat "$STATE/auth-password")" 2>/dev/null
  start_registry auth-registry "$AUTH_PORT" "{ htpasswd: { realm: relctl-test, path: $STATE/htpasswd } }"
  token_key             # Docker Hub's flow: a bearer token from a token server the e2e tests run on TOKEN_SERVER_PORT
  start_registry token-registry "$TOKEN_PORT" "{ token: { realm: 'http://127.0.0.1:$TOKEN_SERVER_PORT/token', service: relctl-test-registry, issuer: relctl-test-token-issuer, rootcertbundle: $STATE/token/cert.pem } }"
  start_sshd
  write_env
  log "dockerd on unix://$STATE/docker.sock (and an empty one on docker2.sock), registries on 127.0.0.1:$REG_PORT and 127.0.0.1:$AUTH_PORT (auth)"
}

stop_pid() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  stop_pid "$STATE/sshd.pid"
  stop_pid "$STATE/auth-registry.pid"
  stop_pid "$STATE/token-registry.pid"
  stop_pid "$STATE/registry.pid"
  stop_pid "$STATE/dockerd.pid"          # dockerd stops the containerd it started
  stop_pid "$STATE/dockerd.launcher.pid"
  stop_pid "$STATE/dockerd2.pid"
  stop_pid "$STATE/dockerd2.launcher.pid"
  stop_pid "$STATE/dockerd3.pid"
  stop_pid "$STATE/dockerd3.launcher.pid"
  log "stopped"
}

# The engines' and registries' data outlive stop (a restart keeps its build
# cache); benchmarks write gigabytes there, so clean removes it.
clean() {
  stop
  if grep -q " $STATE/" /proc/mounts; then log "something is still mounted under $STATE; not deleting"; return 1; fi
  rm -rf "$STATE"/docker-data "$STATE"/docker2-data "$STATE"/docker3-data "$STATE"/registry-data "$STATE"/auth-registry-data "$STATE"/token-registry-data
  log "deleted the engines' and registries' data under $STATE"
}

status() {
  alive "$STATE/dockerd.pid" && alive "$STATE/dockerd2.pid" && alive "$STATE/registry.pid" && alive "$STATE/auth-registry.pid" \
    && alive "$STATE/token-registry.pid" \
    && alive "$STATE/dockerd3.pid" && alive "$STATE/sshd.pid" && [ -f "$STATE/env" ]
}

# Names each service that is no longer running and prints how its log ends
# (a Go runtime's fatal error with the stack of the goroutine that hit it).
diagnose() {
  local name pidfile logfile at
  for name in dockerd dockerd2 dockerd3 registry auth-registry token-registry sshd; do
    pidfile="$STATE/$name.pid"
    if [ ! -f "$pidfile" ] || alive "$pidfile"; then continue; fi
    logfile="$STATE/$name.log"
    log "$name (pid $(cat "$pidfile")) is no longer running; the end of $logfile:"
    [ -f "$logfile" ] || continue
    at=$(grep -n -m1 -E '^(fatal error|panic):' "$logfile" | cut -d: -f1 || true)
    if [ -n "$at" ]; then
      sed -n "$((at > 20 ? at - 20 : 1)),$((at + 40))p" "$logfile" >&2
    else
      tail -n 40 "$logfile" >&2
    fi
  done
}

case "${1:-}" in
  start) start ;;
  diagnose) diagnose ;;
  status) status ;;
  stop) stop ;;
  clean) clean ;;
  env) cat "$STATE/env" ;;
  *) echo "usage: $0 start|status|stop|clean|env|diagnose" >&2; exit 2 ;;
esac
