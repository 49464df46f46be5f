#!/bin/sh
# Least-privilege Kafka ACLs for Fleet Assurance (Apache Kafka's kafka-acls.sh; see deploy/kafka-acls.md).
#
#   BOOTSTRAP=kafka-1:9093 ADMIN_CONFIG=admin.properties ./deploy/kafka-acls.sh
#
# SERVICE   principal of the workers (FLEET_KAFKA_SASL_USERNAME, or the CN of their client certificate)
# PRODUCER  principal of the vehicle gateways, `fleet simulate` and `fleet weather-replay`
# WORKSHOP  principal of `fleet maintenance-import` (writes repair records)
# APP_ID    FLEET_APP_ID: the consumer group and the prefix of the Faust changelog topics
set -eu
: "${BOOTSTRAP:?set BOOTSTRAP to the brokers}"
ADMIN_CONFIG=${ADMIN_CONFIG:-admin.properties}
SERVICE=${SERVICE:-User:fleet-assurance}
PRODUCER=${PRODUCER:-User:fleet-gateway}
WORKSHOP=${WORKSHOP:-User:fleet-workshop}
APP_ID=${APP_ID:-fleet-assurance}
acl() { kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add "$@"; }

# --- the worker: reads its inputs ...
for t in fleet.telemetry fleet.maintenance fleet.weather fleet.charging.requests fleet.grid; do
  acl --allow-principal "$SERVICE" --operation Read --operation Describe --topic "$t"
done
# ... writes dead letters and charging schedules (nothing reads them back)
for t in fleet.telemetry.dlq fleet.maintenance.dlq fleet.weather.dlq fleet.charging.dlq fleet.charging.schedules; do
  acl --allow-principal "$SERVICE" --operation Write --operation Describe --topic "$t"
done
# ... writes and reads back alerts (the alerts view) and the audit trail (GET /audit)
for t in fleet.alerts fleet.audit; do
  acl --allow-principal "$SERVICE" --operation Read --operation Write --operation Describe --topic "$t"
done
# ... owns its Faust topics: table changelogs and the leader-election topic (all "$APP_ID-..."), created by
# the worker at start-up unless `fleet topics` made them first
acl --allow-principal "$SERVICE" --operation Read --operation Write --operation Describe --operation Create \
    --resource-pattern-type prefixed --topic "$APP_ID-"
# ... and its consumer group (offsets, membership). No transactional id: the worker does not run exactly-once.
acl --allow-principal "$SERVICE" --operation Read --operation Describe --group "$APP_ID"

# --- producers: write only, nothing to read
for t in fleet.telemetry fleet.weather fleet.grid fleet.charging.requests; do
  acl --allow-principal "$PRODUCER" --operation Write --operation Describe --topic "$t"
done
acl --allow-principal "$WORKSHOP" --operation Write --operation Describe --topic fleet.maintenance
