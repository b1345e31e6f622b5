#!/usr/bin/env bash
# Project-local Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok, which runs two fake nodes (scripts/kube/nodes.yaml) and plays the pod
# lifecycle of scripts/kube/stages.yaml (Running+Ready at once, faults chosen by a pod annotation),
# and metrics-server, which scrapes kwok's kubelet resource metrics and serves the resource metrics
# API (metrics.k8s.io, `kubectl top`) through the API server's aggregator.
# Nothing listens on or dials anything but 127.0.0.1.
#
#   scripts/kube.sh install      build the binaries into .tools/kube/bin (scripts/kube-build.sh)
#   scripts/kube.sh start        start what is not running and wait until the plane is ready
#   scripts/kube.sh stop         stop the six processes (etcd last); the data is kept
#   scripts/kube.sh status       exit 0 when /readyz answers ok (admin credentials), a node is
#                                Ready and all six processes are healthy, else 1
#   scripts/kube.sh kubeconfig   print the path of the admin kubeconfig (system:masters)
#   scripts/kube.sh kubectl ...  run the built kubectl with the admin kubeconfig
#
# Env: KUBE_DATA_DIR (.data/kube), KUBE_APISERVER_PORT (16443), KUBE_ETCD_PORT (12379),
# KUBE_ETCD_PEER_PORT (12380), KUBE_CONTROLLER_MANAGER_PORT (16257), KUBE_SCHEDULER_PORT (16259),
# KUBE_KWOK_PORT (10247, the fake kubelets' endpoint), KUBE_METRICS_SERVER_PORT (16263),
# KUBE_START_TIMEOUT seconds (120).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KUBE_DIR="$ROOT/scripts/kube"
TOOLS_DIR="$ROOT/.tools/kube"
BIN="$TOOLS_DIR/bin"
CRD_DIR="$TOOLS_DIR/kwok-crds"
DATA_DIR="${KUBE_DATA_DIR:-$ROOT/.data/kube}"
PKI="$DATA_DIR/pki"
LOG_DIR="$DATA_DIR/logs"
RUN_DIR="$DATA_DIR/run"
ADMIN_KUBECONFIG="$DATA_DIR/admin.kubeconfig"

HOST=127.0.0.1
APISERVER_PORT="${KUBE_APISERVER_PORT:-16443}"
ETCD_PORT="${KUBE_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${KUBE_ETCD_PEER_PORT:-12380}"
KCM_PORT="${KUBE_CONTROLLER_MANAGER_PORT:-16257}"
SCHEDULER_PORT="${KUBE_SCHEDULER_PORT:-16259}"
KWOK_PORT="${KUBE_KWOK_PORT:-10247}"
METRICS_SERVER_PORT="${KUBE_METRICS_SERVER_PORT:-16263}"
START_TIMEOUT="${KUBE_START_TIMEOUT:-120}"
SERVER="https://$HOST:$APISERVER_PORT"
# Allocation ranges only: the API server never dials service IPs (no endpoint reconciler, no
# webhooks; the one aggregated API, metrics.k8s.io, is an ExternalName service at 127.0.0.1), and
# pod IPs (the nodes' podCIDRs) are labels on fake pods.
SERVICE_CIDR=10.96.0.0/16
KWOK_CRDS=(logs clusterlogs execs clusterexecs metrics clusterresourceusages resourceusages)

# Start order; stop goes the other way round.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server)

die() { echo "kube: $*" >&2; exit 1; }
say() { echo "kube: $*" >&2; }

for v in "$APISERVER_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT" "$METRICS_SERVER_PORT" "$START_TIMEOUT"; do
  [[ "$v" =~ ^[0-9]+$ ]] || die "not a number: '$v' (KUBE_*_PORT, KUBE_START_TIMEOUT)"
done

# --- install -------------------------------------------------------------------------------------

kwok_version() { sed -n 's/^[[:space:]]*require sigs\.k8s\.io\/kwok \(v[^ ]*\).*/\1/p' "$KUBE_DIR/build/kwok/go.mod"; }

installed() {
  bash "$ROOT/scripts/kube-build.sh" --check &&
    [[ -f "$CRD_DIR/.installed" && "$(cat "$CRD_DIR/.installed")" == "kwok $(kwok_version): ${KWOK_CRDS[*]}" ]]
}

# kwok's CRDs (Logs, ClusterLogs, Exec, ClusterExec, Metric, ClusterResourceUsage, ResourceUsage)
# from the module the kwok binary was built from, kept beside the binaries so that start needs no Go
# toolchain.
install_crds() {
  local version dir tmp crd
  version="$(kwok_version)"
  [[ -n "$version" ]] || die "no sigs.k8s.io/kwok version in $KUBE_DIR/build/kwok/go.mod"
  dir="$(cd "$KUBE_DIR/build/kwok" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOPROXY=off \
    go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)" || die "sigs.k8s.io/kwok $version is not in the Go module cache"
  tmp="$CRD_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for crd in "${KWOK_CRDS[@]}"; do
    cp "$dir/kustomize/crd/bases/kwok.x-k8s.io_$crd.yaml" "$tmp/" || die "kwok $version has no CRD for $crd"
  done
  chmod u+w "$tmp"/*.yaml # read-only in the module cache
  echo "kwok $version: ${KWOK_CRDS[*]}" >"$tmp/.installed"
  rm -rf "$CRD_DIR"
  mv "$tmp" "$CRD_DIR"
}

cmd_install() {
  installed && return 0
  bash "$ROOT/scripts/kube-build.sh" || die "building the control plane failed (see above)"
  install_crds
}

# --- certificates and kubeconfigs ----------------------------------------------------------------

new_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null) ||
    die "openssl could not create the key $1"
}

# self_signed NAME: a CA, NAME.key and NAME.crt (CN fte-kube-NAME).
self_signed() {
  new_key "$PKI/$1.key"
  printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\n' >"$PKI/$1.ext"
  openssl req -new -key "$PKI/$1.key" -subj "/CN=fte-kube-$1" -out "$PKI/$1.csr" 2>/dev/null &&
    openssl x509 -req -in "$PKI/$1.csr" -signkey "$PKI/$1.key" -days 3650 -sha256 \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$PKI/$1.ext" -out "$PKI/$1.crt" 2>/dev/null ||
    die "openssl could not create the CA $1"
  rm -f "$PKI/$1.csr" "$PKI/$1.ext"
}

# sign NAME SUBJECT EXTENSIONS: NAME.key (created if missing) and NAME.crt signed by the CA
# (CA=ca unless set).
sign() {
  local name="$1" subject="$2" ext="$3"
  [[ -f "$PKI/$name.key" ]] || new_key "$PKI/$name.key"
  printf '%b\n' "$ext" >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null &&
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/${CA:-ca}.crt" -CAkey "$PKI/${CA:-ca}.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 -extfile "$PKI/$name.ext" \
      -out "$PKI/$name.crt.tmp" 2>/dev/null ||
    die "openssl could not sign $name.crt"
  mv -f "$PKI/$name.crt.tmp" "$PKI/$name.crt"
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

server_cert() {
  [[ -f "$PKI/$1.crt" ]] && return 0
  sign "$1" "/CN=$2" "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=$3"
}

client_cert() {
  [[ -f "$PKI/$1.crt" ]] && return 0
  sign "$1" "$2" "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
}

# Created once and kept with the data: a new CA would invalidate every kubeconfig handed out.
ensure_pki() {
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -f "$PKI/ca.crt" || ! -f "$PKI/ca.key" ]]; then
    say "creating the cluster CA and certificates in $PKI"
    rm -f "$PKI"/*.crt "$PKI"/*.key "$PKI"/*.pub
    self_signed ca
  fi
  server_cert apiserver kube-apiserver \
    "IP:$HOST,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1"
  server_cert kube-controller-manager-serving kube-controller-manager "IP:$HOST,DNS:localhost"
  server_cert kube-scheduler-serving kube-scheduler "IP:$HOST,DNS:localhost"
  server_cert kwok-serving kwok "IP:$HOST,DNS:localhost"
  # The aggregator checks the name of the APIService's service, kube-system/metrics-server.
  server_cert metrics-server-serving metrics-server \
    "IP:$HOST,DNS:localhost,DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local"
  client_cert admin "/O=system:masters/CN=kubernetes-admin"
  client_cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"
  client_cert kube-controller-manager "/CN=system:kube-controller-manager"
  client_cert kube-scheduler "/CN=system:kube-scheduler"
  # kwok plays every kubelet and needs nodes, pods, leases, events and its own CRDs.
  client_cert kwok "/O=system:masters/CN=kwok-controller"
  # Bound to the standard metrics-server roles by scripts/kube/metrics-server.yaml.
  client_cert metrics-server "/CN=system:metrics-server"
  # The request-header (front proxy) CA: the controller manager and scheduler read it from the
  # extension-apiserver-authentication ConfigMap, and complain without it.
  if [[ ! -f "$PKI/front-proxy-ca.crt" || ! -f "$PKI/front-proxy-ca.key" ]]; then
    rm -f "$PKI"/front-proxy-client.*
    self_signed front-proxy-ca
  fi
  [[ -f "$PKI/front-proxy-client.crt" ]] ||
    CA=front-proxy-ca sign front-proxy-client "/CN=front-proxy-client" \
      "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
  if [[ ! -f "$PKI/sa.key" ]]; then
    new_key "$PKI/sa.key"
    rm -f "$PKI/sa.pub"
  fi
  [[ -f "$PKI/sa.pub" ]] || openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null ||
    die "openssl could not write sa.pub"
}

# kubeconfig FILE USER: certificates embedded, so the file works on its own.
write_kubeconfig() {
  local file="$1" user="$2"
  (
    umask 077
    cat >"$file.tmp" <<EOF
# Generated by scripts/kube.sh on every start; edits are lost.
apiVersion: v1
kind: Config
clusters:
- name: fte-kube
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$user.crt")
    client-key-data: $(base64 -w0 "$PKI/$user.key")
contexts:
- name: fte-kube
  context:
    cluster: fte-kube
    user: $user
current-context: fte-kube
EOF
  )
  mv -f "$file.tmp" "$file"
}

# --- processes -----------------------------------------------------------------------------------

pid_file() { echo "$RUN_DIR/$1.pid"; }
log_file() { echo "$LOG_DIR/$1.log"; }

# True while pid is NAME started by this script for this data dir. Pids get reused, and an
# exited but unreaped process still passes `kill -0`; its cmdline is empty, though.
is_ours() {
  local pid="$1" name="$2" args
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  args="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$(head -n 1 <<<"$args")" == "$BIN/$name" ]] && grep -qF -- "$DATA_DIR/" <<<"$args"
}

our_pid() {
  local pid file
  file="$(pid_file "$1")"
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] && is_ours "$pid" "$1" || return 1
  echo "$pid"
}

port_taken() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$HOST" "$1" 2>/dev/null
}

ports_of() {
  case "$1" in
    etcd) echo "$ETCD_PORT:KUBE_ETCD_PORT $ETCD_PEER_PORT:KUBE_ETCD_PEER_PORT" ;;
    kube-apiserver) echo "$APISERVER_PORT:KUBE_APISERVER_PORT" ;;
    kube-controller-manager) echo "$KCM_PORT:KUBE_CONTROLLER_MANAGER_PORT" ;;
    kube-scheduler) echo "$SCHEDULER_PORT:KUBE_SCHEDULER_PORT" ;;
    kwok) echo "$KWOK_PORT:KUBE_KWOK_PORT" ;;
    metrics-server) echo "$METRICS_SERVER_PORT:KUBE_METRICS_SERVER_PORT" ;;
  esac
}

args_of() {
  case "$1" in
    etcd)
      local peer="http://$HOST:$ETCD_PEER_PORT" client="http://$HOST:$ETCD_PORT"
      # Not fsynced: a crash of the machine may lose the last writes; stop/start keeps them.
      ARGS=(
        --name=fte-kube --data-dir="$DATA_DIR/etcd"
        --listen-client-urls="$client" --advertise-client-urls="$client"
        --listen-peer-urls="$peer" --initial-advertise-peer-urls="$peer"
        --initial-cluster="fte-kube=$peer" --initial-cluster-state=new
        --unsafe-no-fsync --snapshot-count=10000
        --auto-compaction-mode=periodic --auto-compaction-retention=1h
        --quota-backend-bytes=2147483648 --log-level=warn
      )
      ;;
    kube-apiserver)
      ARGS=(
        --etcd-servers="http://$HOST:$ETCD_PORT"
        --bind-address="$HOST" --secure-port="$APISERVER_PORT" --advertise-address="$HOST"
        --endpoint-reconciler-type=none
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key"
        --client-ca-file="$PKI/ca.crt"
        --authorization-mode=Node,RBAC
        --service-account-issuer=https://kubernetes.default.svc.cluster.local
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key"
        --service-cluster-ip-range="$SERVICE_CIDR"
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt"
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
        --kubelet-certificate-authority="$PKI/ca.crt"
        --kubelet-preferred-address-types=InternalIP
        --requestheader-client-ca-file="$PKI/front-proxy-ca.crt"
        --requestheader-allowed-names=front-proxy-client
        --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group
        --requestheader-extra-headers-prefix=X-Remote-Extra-
        --proxy-client-cert-file="$PKI/front-proxy-client.crt"
        --proxy-client-key-file="$PKI/front-proxy-client.key"
        --allow-privileged=true --profiling=false
      )
      ;;
    kube-controller-manager)
      local kc="$DATA_DIR/kube-controller-manager.kubeconfig"
      ARGS=(
        --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc"
        --bind-address="$HOST" --secure-port="$KCM_PORT"
        --tls-cert-file="$PKI/kube-controller-manager-serving.crt"
        --tls-private-key-file="$PKI/kube-controller-manager-serving.key"
        --controllers='*' --use-service-account-credentials=true
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt"
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key"
        --service-cluster-ip-range="$SERVICE_CIDR"
        --leader-elect=false --profiling=false
      )
      ;;
    kube-scheduler)
      local kc="$DATA_DIR/kube-scheduler.kubeconfig"
      ARGS=(
        --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc"
        --bind-address="$HOST" --secure-port="$SCHEDULER_PORT"
        --tls-cert-file="$PKI/kube-scheduler-serving.crt"
        --tls-private-key-file="$PKI/kube-scheduler-serving.key"
        --leader-elect=false --profiling=false
      )
      ;;
    kwok)
      ARGS=(
        --kubeconfig="$DATA_DIR/kwok.kubeconfig"
        --config="$KUBE_DIR/stages.yaml"
        --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
        --node-ip="$HOST" --node-port="$KWOK_PORT" --server-address="$HOST:$KWOK_PORT"
        --tls-cert-file="$PKI/kwok-serving.crt" --tls-private-key-file="$PKI/kwok-serving.key"
        --node-lease-duration-seconds=40
        --enable-crds=Logs,ClusterLogs,Exec,ClusterExec,Metric,ClusterResourceUsage,ResourceUsage
      )
      ;;
    metrics-server)
      # Scrapes every node's kubelet endpoint (kwok, 127.0.0.1:KWOK_PORT) at the path of the node's
      # metrics.k8s.io/resource-metrics-path annotation (scripts/kube/nodes.yaml). kwok's serving
      # certificate is signed by our CA but names no node, hence --kubelet-insecure-tls.
      local kc="$DATA_DIR/metrics-server.kubeconfig"
      ARGS=(
        --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc"
        --bind-address="$HOST" --secure-port="$METRICS_SERVER_PORT"
        --tls-cert-file="$PKI/metrics-server-serving.crt"
        --tls-private-key-file="$PKI/metrics-server-serving.key"
        --kubelet-port="$KWOK_PORT" --kubelet-insecure-tls
        --kubelet-preferred-address-types=InternalIP
        --metric-resolution=10s --kubelet-request-timeout=5s
      )
      ;;
  esac
}

# The first errors say why startup failed; the tail only shows what followed.
show_log() {
  local log
  log="$(log_file "$1")"
  [[ -f "$log" ]] || return 0
  echo "--- $1 ($log)" >&2
  grep -E '^[EF][0-9]{4} |"level":"(error|fatal|panic)"|"level":"ERROR"|^Error:' "$log" |
    grep -vE 'manifest file is empty|Found stale data' | head -n 5 >&2 || true
  echo "..." >&2
  tail -n 20 "$log" >&2
}

STARTED=()

start_component() {
  local name="$1" p
  if our_pid "$name" >/dev/null; then return 0; fi
  for p in $(ports_of "$name"); do
    port_taken "${p%%:*}" &&
      fail "" "$HOST:${p%%:*} is taken by a process that is not this project's $name (set ${p#*:} to move it)"
  done
  args_of "$name"
  local log
  log="$(log_file "$name")"
  [[ -f "$log" ]] && mv -f "$log" "$log.1"
  say "starting $name"
  # setsid: own session, so the process outlives the caller's process group (e.g. a test
  # runner); fds 8/9 (locks) closed so it does not hold them. KWOK_WORKDIR keeps kwok away from
  # a ~/.kwok/kwok.yaml of the user.
  KWOK_WORKDIR="$DATA_DIR/kwok" setsid nohup "$BIN/$name" "${ARGS[@]}" \
    </dev/null >>"$log" 2>&1 8>&- 9>&- &
  local pid=$!
  disown "$pid"
  echo "$pid" >"$(pid_file "$name")"
  STARTED+=("$name")
}

# TERM, then KILL after STOP_GRACE seconds; waits until every one of them is gone.
STOP_GRACE=30
stop_components() {
  local name pid i pids=() names=()
  for name in "$@"; do
    if pid="$(our_pid "$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$name")
    fi
  done
  for ((i = 0; i < ${#pids[@]}; i++)); do
    local n=0
    while is_ours "${pids[$i]}" "${names[$i]}"; do
      if ((n == STOP_GRACE * 5)); then
        say "${names[$i]} (pid ${pids[$i]}) did not stop in ${STOP_GRACE}s; killing it"
        kill -KILL "${pids[$i]}" 2>/dev/null || true
      fi
      n=$((n + 1))
      sleep 0.2
    done
  done
  for name in "$@"; do rm -f "$(pid_file "$name")"; done
}

# --- checks --------------------------------------------------------------------------------------

CURL=(curl -fsS --max-time 5)

# Outputs are captured before matching: with pipefail, `cmd | grep -q` fails at random when grep
# exits before cmd has written everything (SIGPIPE).
etcd_healthy() {
  local health
  health="$("${CURL[@]}" "http://$HOST:$ETCD_PORT/health" 2>/dev/null)" && [[ "$health" == *'"health":"true"'* ]]
}

api() { "${CURL[@]}" --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$SERVER$1" 2>/dev/null; }

apiserver_ready() { [[ -f "$PKI/admin.crt" ]] && [[ "$(api /readyz)" == ok ]]; }

# kube-controller-manager, kube-scheduler and kwok serve /healthz without credentials.
healthz() { [[ "$("${CURL[@]}" --cacert "$PKI/ca.crt" "https://$HOST:$1/healthz" 2>/dev/null)" == ok ]]; }

# metrics-server's /healthz is served to anonymous callers too, with its own serving certificate.
metrics_server_ready() { healthz "$METRICS_SERVER_PORT"; }

# The aggregator reaches metrics-server: `kubectl top` and the metrics API answer (numbers follow
# after its first scrape, within --metric-resolution).
metrics_api_available() {
  local available
  available="$(kubectl get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)" &&
    [[ "$available" == True ]]
}

kubectl() { "$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=10s "$@"; }

node_ready() {
  local ready
  ready="$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}' 2>/dev/null)" &&
    [[ " $ready " == *" True "* ]]
}

healthy() {
  case "$1" in
    etcd) etcd_healthy ;;
    kube-apiserver) apiserver_ready ;;
    kube-controller-manager) healthz "$KCM_PORT" ;;
    kube-scheduler) healthz "$SCHEDULER_PORT" ;;
    kwok) healthz "$KWOK_PORT" ;;
    metrics-server) metrics_server_ready ;;
  esac
}

# True unless NAME runs (ours) with other arguments than this script would give it now, as after an
# update of this script (kwok without the resource usage CRDs, say).
args_current() {
  local pid want have
  pid="$(our_pid "$1")" || return 0
  args_of "$1"
  want="$(printf '%s\n' "$BIN/$1" "${ARGS[@]}")"
  have="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null)" || return 0
  [[ "$have" == "$want" ]]
}

all_ready() {
  local name
  for name in "${COMPONENTS[@]}"; do healthy "$name" && args_current "$name" || return 1; done
  node_ready
}

# On a failed start, stop what this start began, so that no half plane is left behind.
fail() {
  local shown="$1"
  shift
  [[ -n "$shown" ]] && show_log "$shown"
  local -a reversed=()
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do reversed+=("${STARTED[$i]}"); done
  # A component that is still starting may ignore TERM for a long while.
  ((${#reversed[@]})) && STOP_GRACE=5 stop_components "${reversed[@]}"
  die "$*"
}

# wait_for WHAT COMPONENT CHECK...: until CHECK passes; fails early when COMPONENT exits.
wait_for() {
  local what="$1" component="$2"
  shift 2
  until "$@"; do
    if ! our_pid "$component" >/dev/null; then
      fail "$component" "$component exited while waiting for $what (log: $(log_file "$component"))"
    fi
    if ((SECONDS >= DEADLINE)); then
      fail "$component" "timed out after ${START_TIMEOUT}s waiting for $what (log: $(log_file "$component"))"
    fi
    sleep 0.3
  done
}

# --- commands ------------------------------------------------------------------------------------

# Running: /readyz ok with the admin credentials, a Ready node, and every process healthy.
check_status() {
  if ! apiserver_ready; then
    STATUS="kube: not running on $SERVER"
    return 1
  fi
  local name down=()
  for name in "${COMPONENTS[@]}"; do healthy "$name" || down+=("$name"); done
  node_ready || down+=("a Ready node")
  if ((${#down[@]})); then
    STATUS="kube: $SERVER answers, but not ready: ${down[*]} (scripts/kube.sh start restarts what is missing)"
    return 1
  fi
  STATUS="kube: running on $SERVER (kubeconfig $ADMIN_KUBECONFIG)"
}

cmd_status() {
  local attempt
  for attempt in 1 2 3; do
    if check_status; then
      echo "$STATUS"
      return 0
    fi
    # A plane of ours on a busy machine may just be slow to answer: ask again before saying no,
    # since callers start (and later stop) a plane that status reports as not running.
    ((attempt < 3)) && our_pid kube-apiserver >/dev/null || break
    sleep 1
  done
  echo "$STATUS"
  return 1
}

bootstrap() {
  local -a crds=()
  local crd
  for crd in "${KWOK_CRDS[@]}"; do crds+=(-f "$CRD_DIR/kwok.x-k8s.io_$crd.yaml"); done
  kubectl apply --server-side --force-conflicts --field-manager=scripts-kube.sh \
    "${crds[@]}" -f "$KUBE_DIR/nodes.yaml" >>"$LOG_DIR/bootstrap.log" 2>&1 ||
    fail "" "applying kwok's CRDs and the nodes failed (log: $LOG_DIR/bootstrap.log)"
  kubectl wait --for=condition=Established --timeout=30s \
    $(printf 'crd/%s.kwok.x-k8s.io ' "${KWOK_CRDS[@]}") >>"$LOG_DIR/bootstrap.log" 2>&1 ||
    fail "" "kwok's CRDs were not established (log: $LOG_DIR/bootstrap.log)"
  # metrics-server's roles and service, kwok's resource metrics (needs the CRDs above), and the
  # APIService that sends metrics.k8s.io to metrics-server, trusting our CA for its certificate.
  {
    cat "$KUBE_DIR/metrics-server.yaml"
    cat <<EOF
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
  labels: { k8s-app: metrics-server }
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: { name: metrics-server, namespace: kube-system, port: $METRICS_SERVER_PORT }
  caBundle: $(base64 -w0 "$PKI/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
  } | kubectl apply --server-side --force-conflicts --field-manager=scripts-kube.sh -f - \
    >>"$LOG_DIR/bootstrap.log" 2>&1 ||
    fail "" "applying metrics-server's objects failed (log: $LOG_DIR/bootstrap.log)"
  # A kwok process manages a node only while it holds the node's lease, and each process has a
  # new identity: without this, a restarted kwok would leave new pods Pending until the leases
  # of its predecessor expire (40 s).
  if ! our_pid kwok >/dev/null; then
    # shellcheck disable=SC2046
    kubectl delete lease -n kube-node-lease --ignore-not-found \
      $(sed -n 's/^  name: //p' "$KUBE_DIR/nodes.yaml") >>"$LOG_DIR/bootstrap.log" 2>&1 ||
      fail "" "deleting the leases of the fake nodes failed (log: $LOG_DIR/bootstrap.log)"
  fi
}

default_service_account() { kubectl get serviceaccount default -n default -o name >/dev/null 2>&1; }

cmd_start() {
  if all_ready; then
    echo "kube: already running on $SERVER"
    return 0
  fi
  installed || cmd_install
  mkdir -p "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
  exec 9>"$DATA_DIR/.lock"
  flock 9
  # Someone else may have started it while we waited for the lock.
  if all_ready; then
    echo "kube: already running on $SERVER"
    return 0
  fi
  local began=$SECONDS
  DEADLINE=$((SECONDS + START_TIMEOUT))

  local name p stale=()
  for name in "${COMPONENTS[@]}"; do args_current "$name" || stale+=("$name"); done
  if ((${#stale[@]})); then
    say "restarting ${stale[*]}: started with other arguments than this script gives now"
    stop_components "${stale[@]}"
  fi
  for name in "${COMPONENTS[@]}"; do
    our_pid "$name" >/dev/null && continue
    for p in $(ports_of "$name"); do
      port_taken "${p%%:*}" &&
        die "$HOST:${p%%:*} is taken by a process that is not this project's $name (set ${p#*:} to move it)"
    done
  done

  ensure_pki
  write_kubeconfig "$ADMIN_KUBECONFIG" admin
  write_kubeconfig "$DATA_DIR/kube-controller-manager.kubeconfig" kube-controller-manager
  write_kubeconfig "$DATA_DIR/kube-scheduler.kubeconfig" kube-scheduler
  write_kubeconfig "$DATA_DIR/kwok.kubeconfig" kwok
  write_kubeconfig "$DATA_DIR/metrics-server.kubeconfig" metrics-server

  start_component etcd
  wait_for "etcd on $HOST:$ETCD_PORT" etcd etcd_healthy
  start_component kube-apiserver
  wait_for "/readyz of $SERVER" kube-apiserver apiserver_ready
  [[ -f "$LOG_DIR/bootstrap.log" ]] && mv -f "$LOG_DIR/bootstrap.log" "$LOG_DIR/bootstrap.log.1"
  say "kube-apiserver ready after $((SECONDS - began)) s"
  bootstrap
  start_component kube-controller-manager
  start_component kube-scheduler
  start_component kwok
  wait_for "kube-controller-manager on $HOST:$KCM_PORT" kube-controller-manager healthz "$KCM_PORT"
  wait_for "kube-scheduler on $HOST:$SCHEDULER_PORT" kube-scheduler healthz "$SCHEDULER_PORT"
  wait_for "kwok on $HOST:$KWOK_PORT" kwok healthz "$KWOK_PORT"
  wait_for "a Ready node" kwok node_ready
  start_component metrics-server
  wait_for "metrics-server on $HOST:$METRICS_SERVER_PORT" metrics-server metrics_server_ready
  wait_for "the metrics.k8s.io APIService" metrics-server metrics_api_available
  # Proves the controllers work: the service account controller fills new namespaces.
  wait_for "the default service account" kube-controller-manager default_service_account
  echo "kube: running on $SERVER after $((SECONDS - began)) s (kubeconfig $ADMIN_KUBECONFIG, logs $LOG_DIR)"
}

cmd_stop() {
  mkdir -p "$DATA_DIR"
  exec 9>"$DATA_DIR/.lock"
  flock 9
  local name any=""
  for name in "${COMPONENTS[@]}"; do our_pid "$name" >/dev/null && any=1; done
  if [[ -z "$any" ]]; then
    rm -f "$RUN_DIR"/*.pid 2>/dev/null || true
    if apiserver_ready; then
      echo "kube: an API server on $SERVER was not started by this script; left alone"
    else
      echo "kube: not running"
    fi
    return 0
  fi
  stop_components metrics-server kwok kube-scheduler kube-controller-manager kube-apiserver
  stop_components etcd
  echo "kube: stopped (data kept in $DATA_DIR)"
}

cmd_kubeconfig() {
  [[ -f "$ADMIN_KUBECONFIG" ]] || die "no kubeconfig yet; run 'scripts/kube.sh start'"
  echo "$ADMIN_KUBECONFIG"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kubeconfig) cmd_kubeconfig ;;
  kubectl)
    shift
    [[ -x "$BIN/kubectl" ]] || die "kubectl is not built; run 'scripts/kube.sh install'"
    exec "$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"
    ;;
  *)
    echo "usage: $0 {install|start|stop|status|kubeconfig|kubectl ...}" >&2
    exit 2
    ;;
esac
