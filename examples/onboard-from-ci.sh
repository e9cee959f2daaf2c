#!/usr/bin/env bash
# Provision one device from a CI job or a factory line with the fleet-provision CLI.
# Secrets arrive as environment variables (PEM text), so they never touch the command line or a log:
#   FLEET_PROVISION_CLAIM_CERT, FLEET_PROVISION_CLAIM_KEY   the claim certificate and its key
#   AWS_IOT_ENDPOINT   aws iot describe-endpoint --endpoint-type iot:Data-ATS --query endpointAddress --output text
#   SERIAL_NUMBER      this device's serial number
#   CA_FILE            optional: the server's CA (Node's built-in roots already include Amazon Root CA 1)
#   OUT_DIR            optional: where the credentials go (default ./credentials)
set -euo pipefail

out_dir="${OUT_DIR:-./credentials}"
ca_flags=()
if [ -n "${CA_FILE:-}" ]; then ca_flags=(--ca "$CA_FILE"); fi

# --json: one JSON object on stdout (thingName, certificateId, deviceConfiguration, files), never a key.
# Progress goes to stderr. A complete set in --out made for this endpoint, template and serial number
# means "done": exit 0 without connecting; a set made for anything else exits 2 and says what differs.
status=0
fleet-provision provision \
  --endpoint "$AWS_IOT_ENDPOINT" \
  --template FactoryTemplate \
  --param "SerialNumber=$SERIAL_NUMBER" \
  --keys generate \
  --timeout 30000 \
  --out "$out_dir" \
  "${ca_flags[@]}" \
  --json >provisioned.json || status=$?

case "$status" in
  0) echo "provisioned: $(cat provisioned.json)" ;;
  3) echo "the service rejected the request: check the template and parameters" >&2 ;;
  4 | 5) echo "timeout or connection failure (already retried): run the job again later" >&2 ;;
  *) echo "provisioning failed with exit code $status: see the error above" >&2 ;;
esac
exit "$status"
