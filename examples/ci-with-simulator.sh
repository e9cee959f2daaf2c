#!/usr/bin/env bash
# Rehearse the onboarding in CI without an AWS account: run onboard-from-ci.sh against the local
# simulator, started with the CLI and a template shaped like FactoryTemplate.
set -euo pipefail

work=$(mktemp -d)
cat >"$work/templates.json" <<'JSON'
{
  "FactoryTemplate": {
    "thingName": "sensor-{{SerialNumber}}",
    "requiredParameters": ["SerialNumber"],
    "deviceConfiguration": { "Fleet": "factory" }
  }
}
JSON

# The simulator prints "endpoint: mqtts://127.0.0.1:<port>" once it listens; --port 0 picks a free port.
coproc SIMULATOR { exec fleet-provision simulate --port 0 --out "$work/simulator" --templates "$work/templates.json" --quiet; }
simulator_pid=$SIMULATOR_PID
trap 'kill "$simulator_pid" 2>/dev/null || true; wait "$simulator_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
endpoint=
while read -r label value <&"${SIMULATOR[0]}"; do
  if [ "$label" = "endpoint:" ]; then endpoint=$value; break; fi
done
if [ -z "$endpoint" ]; then echo "the simulator did not start" >&2; exit 1; fi

AWS_IOT_ENDPOINT=$endpoint \
  CA_FILE="$work/simulator/ca.pem.crt" \
  FLEET_PROVISION_CLAIM_CERT="$(cat "$work/simulator/claim.pem.crt")" \
  FLEET_PROVISION_CLAIM_KEY="$(cat "$work/simulator/claim.private.pem.key")" \
  SERIAL_NUMBER="${SERIAL_NUMBER:-CI-0001}" \
  bash "$(dirname "$0")/onboard-from-ci.sh"
