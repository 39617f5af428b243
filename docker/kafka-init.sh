#!/usr/bin/env bash
# One shot, run by the compose service `kafka-init` (docker/compose.yaml): creates minhu's SCRAM
# users and their ACLs with Kafka's own tools. Safe to run again: a password is set to the value
# in docker/.env (so re-running rotates it), an ACL that exists already is left as it is.
#
# It runs in the broker's network namespace and speaks to the loopback-only BROKER listener,
# where the principal is User:ANONYMOUS (a super user, reachable only from inside that
# namespace): the SCRAM users cannot log in before this script has created them.
#
# Who may do what (docker/README.md has the same table; tests/unit/streams/test_docker.py runs
# this script with stub tools and checks the grants):
#
#   admin    super user (KAFKA_SUPER_USERS): `minhu topics create`, operators' tools
#   worker   reads the intake topics; writes dispatch, closures, ratings, hand-off and dead
#            letters; reads and writes its forwarded, changelog and leader topics; group = app id;
#            transactions (exactly_once) under the app id
#   gateway  writes the alarm intake, nothing else (sensor gateways)
#   service  writes every intake topic (appeals, urgent, patrol, actions, ratings, alarms) and
#            the dead letters of what its doors refuse (minhu serve --broker, mqtt-bridge);
#            reads dispatch, closures and ratings (its board and Open311), in no group
#   ops      reads the dispatch topics, groups minhu-ops-* (`minhu consume`)
#   auditor  alone reads the dead-letter topic (clear personal data); reads the intake topics
#            for `minhu replay --from kafka`; groups minhu-audit*
#
# Environment: TOPIC_PREFIX, APP_ID, and one SCRAM_<USER>_PASSWORD per user.
set -euo pipefail

BIN=${KAFKA_BIN:-/opt/kafka/bin}
BOOTSTRAP=${KAFKA_BOOTSTRAP:-127.0.0.1:9094}
P=${TOPIC_PREFIX:?TOPIC_PREFIX is not set}
APP=${APP_ID:?APP_ID is not set}

fail() {
  echo "kafka-init: $*" >&2
  exit 1
}

# ---- topics (streams/topics.py and streams/drivers/kafka/admin.py: plan()) -----------------
INTAKE=()
for kind in appeal alarm patrol urgent action rating; do INTAKE+=("${P}intake.${kind}"); done
DISPATCH=()
for tier in micro_grid grid community street; do DISPATCH+=("${P}dispatch.${tier}"); done
OUTPUTS=("${DISPATCH[@]}" "${P}closures" "${P}ratings" "${P}handoff.district")
DEADLETTER="${P}deadletter"
# The worker's own: records forwarded to the partition that holds their shard, the changelog
# of its `buckets` table, and Faust's leader-election topic.
OWN=("${P}internal.${APP}.forwarded" "${APP}-buckets-changelog" "${APP}-__assignor-__leader")

# ---- users ------------------------------------------------------------------------------------
USERS=(admin worker gateway service ops auditor)

scram_user() { # name
  local name=$1 var
  var="SCRAM_${name^^}_PASSWORD"
  local password=${!var:-}
  [[ -n $password ]] || fail "$var is not set"
  # kafka-configs.sh splits its --add-config value on , = [ ]: keep passwords to a safe alphabet
  # (docker/.env.example: openssl rand -hex 32).
  [[ $password =~ ^[A-Za-z0-9._~+/-]{16,}$ ]] ||
    fail "$var: use at least 16 of A-Z a-z 0-9 . _ ~ + / - (openssl rand -hex 32)"
  # The password is on this one-shot container's command line, seen by no other container.
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter \
    --entity-type users --entity-name "$name" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=${password}]"
}

# allow USER OPERATIONS PATTERN (literal|prefixed) RESOURCE (topic|group|transactional-id) NAME...
allow() {
  local user=$1 ops=$2 pattern=$3 resource=$4
  shift 4
  local args=(--bootstrap-server "$BOOTSTRAP" --add --allow-principal "User:${user}")
  local op name
  IFS=, read -ra op_list <<<"$ops"
  for op in "${op_list[@]}"; do args+=(--operation "$op"); done
  args+=(--resource-pattern-type "$pattern")
  for name in "$@"; do args+=("--${resource}" "$name"); done
  "$BIN/kafka-acls.sh" "${args[@]}"
}

for user in "${USERS[@]}"; do scram_user "$user"; done

# ---- ACLs -------------------------------------------------------------------------------------
# Read implies Describe; Write implies Describe (and, since Kafka 3.0, IdempotentWrite).
allow worker Read literal topic "${INTAKE[@]}"
allow worker Write literal topic "${OUTPUTS[@]}" "$DEADLETTER"
allow worker Read,Write literal topic "${OWN[@]}"
allow worker Read literal group "$APP"
allow worker Write prefixed transactional-id "${APP}-"

allow gateway Write literal topic "${P}intake.alarm"

allow service Write literal topic "${INTAKE[@]}" "$DEADLETTER"
allow service Read literal topic "${DISPATCH[@]}" "${P}closures" "${P}ratings"

allow ops Read literal topic "${DISPATCH[@]}"
allow ops Read prefixed group minhu-ops-

allow auditor Read literal topic "$DEADLETTER" "${INTAKE[@]}"
allow auditor Read prefixed group minhu-audit

echo "kafka-init: ${#USERS[@]} SCRAM users and their ACLs are in place"
