#!/usr/bin/env bash
# Project-local single-node Kafka (KRaft, combined broker+controller) run by the machine's JDK.
#
#   scripts/kafka.sh install   fetch the jars pinned in scripts/kafka-pom.xml into .tools/kafka/libs/
#   scripts/kafka.sh start     start the broker in the background (reuses one already answering)
#   scripts/kafka.sh stop      stop the broker started by this script
#   scripts/kafka.sh status    exit 0 if a broker answers on the port, else 1
#
# Env: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093), KAFKA_START_TIMEOUT seconds (90),
#      KAFKA_SANDBOX_PORT_BASE (19100), KAFKA_SANDBOX_PROXY_PORT_BASE (19110), KAFKA_SANDBOX_SLOTS (4),
#      KAFKA_SASL_SSL_PORT (19095), KAFKA_MTLS_PORT (19096).
#
# Secured listeners, for testing the worker's KAFKA_SSL* and KAFKA_SASL* settings:
#   SASL_SSL on KAFKA_SASL_SSL_PORT: TLS, then SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. The PLAIN user is
#     `incident_response` with the password in .data/kafka/sasl-password (random, made once). SCRAM users do
#     not exist until created, e.g. with kafka-configs (ConfigCommand) through the PLAINTEXT listener.
#   MTLS (protocol SSL) on KAFKA_MTLS_PORT: TLS with a client certificate signed by the CA, no SASL.
# Their certificates are made by the first start into .data/kafka/tls/ and kept: ca.crt is the CA clients
# trust; client.crt and client.key are a client certificate for MTLS; broker.* is the broker's own.
#
# Sandbox slots: besides PLAINTEXT on KAFKA_PORT, the broker has KAFKA_SANDBOX_SLOTS more PLAINTEXT
# listeners, SANDBOX1..SANDBOXn. Slot i listens on 127.0.0.1:(KAFKA_SANDBOX_PORT_BASE + i) but advertises
# 127.0.0.1:(KAFKA_SANDBOX_PROXY_PORT_BASE + i), where the simulated platform that holds the slot runs a
# proxy to the slot's listener (src/sandbox/kafka-slot.ts). Its clients learn the proxy's address from the
# metadata and keep going through the proxy, which the sandbox can cut to make Kafka unreachable for them
# alone. src/sandbox/kafka-slot.ts has the same variables and defaults (KAFKA_SANDBOX_DEFAULTS): change
# both together.
#
# The configuration is written on every start. `start` and `status` reuse a broker that already answers
# and warn when it was started with another configuration (e.g. one from before the SASL_SSL listener): then
# run `scripts/kafka.sh stop && scripts/kafka.sh start` once.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
POM="$ROOT/scripts/kafka-pom.xml"
TOOLS_DIR="$ROOT/.tools/kafka"
LIBS_DIR="$TOOLS_DIR/libs"
MARKER="$LIBS_DIR/.installed"
DATA_DIR="$ROOT/.data/kafka"
LOG_DIRS="$DATA_DIR/logs"
CONFIG="$DATA_DIR/server.properties"
LOG4J_CONFIG="$DATA_DIR/log4j2.properties"
CLUSTER_ID_FILE="$DATA_DIR/cluster.id"
PID_FILE="$DATA_DIR/kafka.pid"
LOG_FILE="$DATA_DIR/kafka.log"

PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
SANDBOX_PORT_BASE="${KAFKA_SANDBOX_PORT_BASE:-19100}"
SANDBOX_PROXY_PORT_BASE="${KAFKA_SANDBOX_PROXY_PORT_BASE:-19110}"
SANDBOX_SLOTS="${KAFKA_SANDBOX_SLOTS:-4}"
SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-19095}"
MTLS_PORT="${KAFKA_MTLS_PORT:-19096}"
TLS_DIR="$DATA_DIR/tls"
SASL_USER=incident_response
SASL_PASSWORD_FILE="$DATA_DIR/sasl-password"
HOST=127.0.0.1
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/java}"
JAVA="${JAVA:-java}"

die() { echo "kafka: $*" >&2; exit 1; }

for v in "$PORT" "$CONTROLLER_PORT" "$START_TIMEOUT" "$SANDBOX_PORT_BASE" "$SANDBOX_PROXY_PORT_BASE" "$SANDBOX_SLOTS" \
  "$SASL_SSL_PORT" "$MTLS_PORT"; do
  [[ "$v" =~ ^[0-9]+$ ]] ||
    die "not a number: '$v' (KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_START_TIMEOUT, KAFKA_SANDBOX_*, KAFKA_SASL_SSL_PORT, KAFKA_MTLS_PORT)"
done

# Slot i (1-based) listens on SANDBOX_PORTS[i-1] and is advertised as SANDBOX_PROXY_PORTS[i-1].
SANDBOX_PORTS=()
SANDBOX_PROXY_PORTS=()
for ((i = 1; i <= 10#$SANDBOX_SLOTS; i++)); do
  SANDBOX_PORTS+=($((10#$SANDBOX_PORT_BASE + i)))
  SANDBOX_PROXY_PORTS+=($((10#$SANDBOX_PROXY_PORT_BASE + i)))
done
declare -A seen_ports=()
for p in "$PORT" "$CONTROLLER_PORT" "$SASL_SSL_PORT" "$MTLS_PORT" "${SANDBOX_PORTS[@]}" "${SANDBOX_PROXY_PORTS[@]}"; do
  ((10#$p >= 1 && 10#$p <= 65535)) || die "port $p is out of range (KAFKA_*PORT*, KAFKA_SANDBOX_*)"
  [[ -z "${seen_ports[$((10#$p))]:-}" ]] || die "port $p is used twice (KAFKA_*PORT*, KAFKA_SANDBOX_*)"
  seen_ports[$((10#$p))]=1
done
unset seen_ports p i

kafka_version() {
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM"
}

# Identifies what is installed: any edit of the pom triggers a fresh install.
install_stamp() {
  echo "kafka $(kafka_version) pom-sha256 $(sha256sum "$POM" | cut -d' ' -f1)"
}

installed() {
  [[ -f "$MARKER" ]] && [[ "$(cat "$MARKER")" == "$(install_stamp)" ]]
}

cmd_install() {
  installed && return 0
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  mkdir -p "$TOOLS_DIR"
  exec 8>"$TOOLS_DIR/.install.lock"
  flock 8
  if installed; then exec 8>&-; return 0; fi

  echo "kafka: installing Kafka $(kafka_version) into $LIBS_DIR" >&2
  local tmp="$TOOLS_DIR/libs.tmp.$$"
  rm -rf "$tmp"
  # Output kept aside: even with -q -B, Debian's mvn 3.8 prints stray ANSI codes.
  if ! mvn -B -q -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$TOOLS_DIR/install.log" 2>&1; then
    rm -rf "$tmp"
    cat "$TOOLS_DIR/install.log" >&2
    die "mvn could not fetch the Kafka jars (see above)"
  fi
  install_stamp >"$tmp/.installed"
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  exec 8>&-
}

# True when something on the port answers a Kafka ApiVersions v0 request (api key 18,
# correlation id 1, client id "k") with a response carrying correlation id 1. Checking the
# protocol, not just the TCP port, waits until the broker really serves requests.
broker_answers() {
  local reply
  reply="$(timeout 3 bash -c '
      exec 3<>"/dev/tcp/$1/$2" || exit 1
      printf "\x00\x00\x00\x0b\x00\x12\x00\x00\x00\x00\x00\x01\x00\x01k" >&3
      head -c 8 <&3 | od -An -tx1
    ' _ "$HOST" "$PORT" 2>/dev/null)" || return 1
  reply="${reply//[[:space:]]/}"
  [[ "${reply:8:8}" == "00000001" ]]
}

port_taken() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$HOST" "$1" 2>/dev/null
}

# The first errors say why startup failed; the tail only shows the shutdown that followed.
show_log() {
  grep -m 5 -E '^\[[^]]*\] (ERROR|FATAL) ' "$LOG_FILE" >&2 || true
  echo "..." >&2
  tail -n 20 "$LOG_FILE" >&2
}

# True while pid is a live broker of this project. Pids get reused, and an exited but
# unreaped process still passes `kill -0`; its cmdline is empty, though.
is_our_broker() {
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF "$CONFIG"
}

our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && is_our_broker "$pid" || return 1
  echo "$pid"
}

# The broker's server.properties, on stdout. The version line says which layout of this file a broker
# was started with; a running broker's file is compared with this text to tell whether it is current.
config_text() {
  local listeners="PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT"
  listeners+=",SASL_SSL://$HOST:$SASL_SSL_PORT,MTLS://$HOST:$MTLS_PORT"
  local advertised="PLAINTEXT://$HOST:$PORT,SASL_SSL://$HOST:$SASL_SSL_PORT,MTLS://$HOST:$MTLS_PORT"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL"
  # Read, not made, here: `status` compares this text with the running broker's and must not write.
  local password
  password="$(cat "$SASL_PASSWORD_FILE" 2>/dev/null || true)"
  local i
  for ((i = 1; i <= ${#SANDBOX_PORTS[@]}; i++)); do
    listeners+=",SANDBOX$i://$HOST:${SANDBOX_PORTS[i - 1]}"
    advertised+=",SANDBOX$i://$HOST:${SANDBOX_PROXY_PORTS[i - 1]}"
    protocols+=",SANDBOX$i:PLAINTEXT"
  done
  cat <<EOF
# Generated by scripts/kafka.sh on every start; edits are lost.
# kafka.sh config version 3: sandbox slots SANDBOX1..SANDBOX${#SANDBOX_PORTS[@]}, SASL_SSL, MTLS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
# SANDBOXi (sandbox slot i) advertises the port of the proxy of the sandbox holding the slot.
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$LOG_DIRS
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions: the first consumer group and transaction are ready much sooner.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
# SASL_SSL: TLS with the broker's certificate, then SASL. SCRAM users are kept in the cluster metadata.
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/broker.pem
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$password";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# MTLS: TLS, and the client must present a certificate signed by the CA.
listener.name.mtls.ssl.keystore.type=PEM
listener.name.mtls.ssl.keystore.location=$TLS_DIR/broker.pem
listener.name.mtls.ssl.truststore.type=PEM
listener.name.mtls.ssl.truststore.location=$TLS_DIR/ca.crt
listener.name.mtls.ssl.client.auth=required
EOF
}

write_config() {
  # It holds the SASL password.
  (umask 077 && config_text >"$CONFIG")

  cat >"$LOG4J_CONFIG" <<'EOF'
# stdout of the broker is redirected to .data/kafka/kafka.log by scripts/kafka.sh
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=OUT
logger.request.name=kafka.request.logger
logger.request.level=WARN
logger.clients.name=org.apache.kafka.clients
logger.clients.level=WARN
EOF
}

new_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null) ||
    die "openssl could not create the key $1"
}

# sign NAME SUBJECT EXTENSIONS: NAME.key and NAME.crt, signed by the CA.
sign() {
  local name="$1" subject="$2"
  new_key "$TLS_DIR/$name.key"
  printf '%b\n' "$3" >"$TLS_DIR/$name.ext"
  openssl req -new -key "$TLS_DIR/$name.key" -subj "$subject" -out "$TLS_DIR/$name.csr" 2>/dev/null &&
    openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 -extfile "$TLS_DIR/$name.ext" \
      -out "$TLS_DIR/$name.crt" 2>/dev/null ||
    die "openssl could not sign $name.crt"
  rm -f "$TLS_DIR/$name.csr" "$TLS_DIR/$name.ext"
}

# The CA and the certificates of the secured listeners, made once and kept: tests and people trust ca.crt.
# All or nothing: a half-made set (an interrupted first start) is made again.
ensure_tls() {
  [[ -s "$TLS_DIR/broker.pem" && -s "$TLS_DIR/ca.crt" && -s "$TLS_DIR/client.crt" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  echo "kafka: creating a CA and certificates in $TLS_DIR" >&2
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  new_key "$TLS_DIR/ca.key"
  openssl req -new -x509 -key "$TLS_DIR/ca.key" -subj "/CN=fte-incident-response test Kafka CA" -days 3650 \
    -sha256 -set_serial "0x$(openssl rand -hex 16)" -out "$TLS_DIR/ca.crt" \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null ||
    die "openssl could not create the CA"
  sign broker "/CN=localhost" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:$HOST,DNS:localhost"
  sign client "/CN=$SASL_USER" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
  # A PEM keystore is the unencrypted PKCS#8 key followed by the chain.
  (umask 077 && cat "$TLS_DIR/broker.key" "$TLS_DIR/broker.crt" "$TLS_DIR/ca.crt" >"$TLS_DIR/broker.pem.tmp")
  mv -f "$TLS_DIR/broker.pem.tmp" "$TLS_DIR/broker.pem"
}

ensure_sasl_password() {
  [[ -s "$SASL_PASSWORD_FILE" ]] && return 0
  (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$SASL_PASSWORD_FILE.tmp")
  mv -f "$SASL_PASSWORD_FILE.tmp" "$SASL_PASSWORD_FILE"
}

# 22-char URL-safe base64 of 16 random bytes, the form of a Kafka Uuid. Like
# Uuid.randomUuid(), avoid a leading '-', which the CLI would take for an option.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && break
  done
  echo "$id"
}

format_storage() {
  [[ -f "$LOG_DIRS/meta.properties" ]] && return 0
  [[ -s "$CLUSTER_ID_FILE" ]] || new_cluster_id >"$CLUSTER_ID_FILE"
  echo "kafka: formatting $LOG_DIRS (cluster id $(cat "$CLUSTER_ID_FILE"))" >&2
  "$JAVA" -cp "$LIBS_DIR/*" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    kafka.tools.StorageTool format -t "$(cat "$CLUSTER_ID_FILE")" -c "$CONFIG" >>"$LOG_FILE" 2>&1 \
    || { tail -n 20 "$LOG_FILE" >&2; die "formatting the storage failed (log: $LOG_FILE)"; }
}

# A broker reads its configuration at start only. Say so when the file our running broker read (rewritten
# by a start only) differs from what a start would write now.
warn_if_outdated() {
  our_pid >/dev/null || return 0
  [[ -f "$CONFIG" ]] || return 0
  [[ "$(cat "$CONFIG")" == "$(config_text)" ]] && return 0
  echo "kafka: warning: the running broker was started with another configuration than a start would" \
    "write now (e.g. one without the sandbox slots or the SASL_SSL listener); run 'scripts/kafka.sh stop && scripts/kafka.sh start'" >&2
}

cmd_status() {
  if broker_answers; then
    warn_if_outdated
    echo "kafka: running on $HOST:$PORT"
  else
    echo "kafka: not running on $HOST:$PORT"
    return 1
  fi
}

cmd_start() {
  if broker_answers; then
    warn_if_outdated
    echo "kafka: already running on $HOST:$PORT"
    return 0
  fi
  cmd_install
  mkdir -p "$DATA_DIR"
  exec 9>"$DATA_DIR/.lock"
  flock 9
  # Someone else may have started it while we waited for the lock.
  if broker_answers; then
    echo "kafka: already running on $HOST:$PORT"
    return 0
  fi
  our_pid >/dev/null && die "broker process $(our_pid) exists but does not answer on $HOST:$PORT; run 'scripts/kafka.sh stop' first"
  local p
  # Not the proxy ports: sandboxes hold those, whether the broker runs or not.
  for p in "$PORT" "$CONTROLLER_PORT" "$SASL_SSL_PORT" "$MTLS_PORT" "${SANDBOX_PORTS[@]}"; do
    port_taken "$p" && die "$HOST:$p is taken by a process that is not this project's Kafka broker"
  done

  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  ensure_tls
  ensure_sasl_password
  write_config
  format_storage

  # C1 only (TieredStopAtLevel=1): a test broker gains little from C2, and it starts ~3 s
  # sooner and uses ~60 MB less memory on this 2-core machine.
  local -a jvm_opts=(
    -Xms128m -Xmx512m -XX:TieredStopAtLevel=1
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$LOG4J_CONFIG"
  )
  # setsid: own session, so the broker outlives the caller's process group (e.g. a test
  # runner); fds 8/9 (locks) closed so the broker does not hold them.
  setsid nohup "$JAVA" "${jvm_opts[@]}" -cp "$LIBS_DIR/*" kafka.Kafka "$CONFIG" \
    </dev/null >>"$LOG_FILE" 2>&1 8>&- 9>&- &
  local pid=$!
  disown "$pid"
  echo "$pid" >"$PID_FILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  until broker_answers; do
    if ! is_our_broker "$pid"; then
      rm -f "$PID_FILE"
      show_log
      die "broker exited during startup (log: $LOG_FILE)"
    fi
    if ((SECONDS >= deadline)); then
      show_log
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "broker did not answer on $HOST:$PORT within ${START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    sleep 0.5
  done
  echo "kafka: running on $HOST:$PORT (pid $pid, log $LOG_FILE)"
}

cmd_stop() {
  local pid
  mkdir -p "$DATA_DIR"
  exec 9>"$DATA_DIR/.lock"
  flock 9
  if ! pid="$(our_pid)"; then
    rm -f "$PID_FILE"
    if broker_answers; then
      echo "kafka: a broker on $HOST:$PORT was not started by this script; left alone"
    else
      echo "kafka: not running"
    fi
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 120; i++)); do # controlled shutdown, up to 60 s
    is_our_broker "$pid" || break
    sleep 0.5
  done
  if is_our_broker "$pid"; then
    echo "kafka: broker $pid did not stop in 60s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while is_our_broker "$pid"; do sleep 0.2; done
  fi
  rm -f "$PID_FILE"
  echo "kafka: stopped"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 {install|start|stop|status}" >&2
    exit 2
    ;;
esac
