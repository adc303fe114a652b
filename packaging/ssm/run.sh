#!/bin/sh
# Step runGdDoctor: run gd-doctor, optionally upload its SSM Compliance items, and exit with a
# status fit for Run Command's rate control (--max-errors):
#   gd-doctor 0 (no problem found)       -> 0
#   gd-doctor 1 (problems found/unknown) -> 0, or 1 when failOnUnhealthy=true
#   gd-doctor 2 (usage error), 3 (gd-doctor failed or missing), anything else -> that code
# So by default only a broken gd-doctor counts as an error, and a fleet-wide run is not stopped by
# its first unhealthy instances. With format=ssm the output is the compact one, verdict first and
# at most 2,500 characters, which is what the console shows. The full JSON report goes to
# $GD_DOCTOR_REPORT for the publishReport step. inventory, compliance and emf switch on
# gd-doctor's --inventory, --compliance FILE and --emf; their failures are one line each on
# stderr and never change the exit status.
if [ -z "${SSM_format+x}" ]; then SSM_format='{{ format }}'; fi
if [ -z "${SSM_timeout+x}" ]; then SSM_timeout='{{ timeout }}'; fi
if [ -z "${SSM_extraArguments+x}" ]; then SSM_extraArguments='{{ extraArguments }}'; fi
if [ -z "${SSM_inventory+x}" ]; then SSM_inventory='{{ inventory }}'; fi
if [ -z "${SSM_compliance+x}" ]; then SSM_compliance='{{ compliance }}'; fi
if [ -z "${SSM_emf+x}" ]; then SSM_emf='{{ emf }}'; fi
if [ -z "${SSM_failOnUnhealthy+x}" ]; then SSM_failOnUnhealthy='{{ failOnUnhealthy }}'; fi
GD_DOCTOR=${GD_DOCTOR:-/usr/bin/gd-doctor}
GD_DOCTOR_REPORT=${GD_DOCTOR_REPORT:-/var/lib/gd-doctor/ssm-report.json}
GD_DOCTOR_ITEMS=${GD_DOCTOR_ITEMS:-/var/lib/gd-doctor/compliance-items.json}

for d in "$(dirname "$GD_DOCTOR_REPORT")" "$(dirname "$GD_DOCTOR_ITEMS")"; do
    mkdir -p "$d" && chmod 0700 "$d"
done
rm -f "$GD_DOCTOR_REPORT" "$GD_DOCTOR_ITEMS"
if [ ! -x "$GD_DOCTOR" ]; then
    echo "UNKNOWN: gd-doctor is not installed on this instance ($GD_DOCTOR missing)."
    echo "Install the package, or run this document with installFrom set."
    exit 3
fi

set --
[ "$SSM_inventory" = true ] && set -- "$@" --inventory
[ "$SSM_compliance" = true ] && set -- "$@" --compliance "$GD_DOCTOR_ITEMS"
[ "$SSM_emf" = true ] && set -- "$@" --emf
set -f  # extraArguments is split into words, never globbed
# shellcheck disable=SC2086
"$GD_DOCTOR" check --format "$SSM_format" --timeout "$SSM_timeout" \
    --output "$GD_DOCTOR_REPORT" "$@" $SSM_extraArguments
rc=$?
set +f

# put-compliance-items needs the instance id, the Region and the time of the run: read them from
# the JSON report (the SSM Agent's AWS_SSM_* variables when the report has none). Only values of
# the documented shapes are used, one per line.
upload_compliance() {
    [ -s "$GD_DOCTOR_ITEMS" ] || { echo "compliance: gd-doctor wrote no items; nothing uploaded" >&2; return 0; }
    aws=$(command -v aws || true)
    if [ -z "$aws" ]; then
        echo "compliance: the AWS CLI (aws) is not installed on this instance: items not uploaded (they are in $GD_DOCTOR_ITEMS; install the AWS CLI to upload them)" >&2
        return 0
    fi
    py=$(command -v python3 || true)
    [ -n "$py" ] || { echo "compliance: no python3 to read the report with; items not uploaded" >&2; return 0; }
    ids=$("$py" -I -c 'import json, os, re, sys
from datetime import datetime, timezone
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    host = doc.get("host") or {}
except (OSError, ValueError, AttributeError):
    doc, host = {}, {}
iid = host.get("instance_id") or os.environ.get("AWS_SSM_INSTANCE_ID") or ""
region = host.get("region") or os.environ.get("AWS_SSM_REGION_NAME") or ""
try:
    at = datetime.fromisoformat(str(doc.get("started_at")))
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
except ValueError:
    at = datetime.now(timezone.utc)
ok_iid = re.fullmatch(r"(i-[0-9a-f]{8,17}|mi-[0-9a-f]{17})", str(iid))
ok_region = re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}", str(region))
print(iid if ok_iid else "")
print(region if ok_region else "")
print(at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))' "$GD_DOCTOR_REPORT" 2>/dev/null)
    iid=$(printf '%s\n' "$ids" | sed -n 1p)
    region=$(printf '%s\n' "$ids" | sed -n 2p)
    when=$(printf '%s\n' "$ids" | sed -n 3p)
    [ -n "$iid" ] || { echo "compliance: the instance id is unknown (not in the report, no AWS_SSM_INSTANCE_ID): items not uploaded" >&2; return 0; }
    [ -n "$region" ] || { echo "compliance: the Region is unknown (not in the report, no AWS_SSM_REGION_NAME): items not uploaded" >&2; return 0; }
    summary="ExecutionTime=$when,ExecutionType=Command"
    # Run Command runs each step in .../document/orchestration/<command-id>/<step>.
    cid=$(pwd | sed -n 's|.*/orchestration/\([0-9a-f-]\{36\}\)/.*|\1|p')
    [ -z "$cid" ] || summary="$summary,ExecutionId=$cid"
    if "$aws" ssm put-compliance-items --resource-id "$iid" --resource-type ManagedInstance \
        --compliance-type Custom:GdDoctor --upload-type COMPLETE \
        --execution-summary "$summary" --items "file://$GD_DOCTOR_ITEMS" --region "$region" \
        --cli-read-timeout 30 --cli-connect-timeout 10 >/dev/null; then
        echo "compliance: uploaded Custom:GdDoctor items for $iid in $region" >&2
    else
        echo "compliance: aws ssm put-compliance-items failed for $iid in $region (see above; the instance profile needs ssm:PutComplianceItems)" >&2
    fi
}
[ "$SSM_compliance" = true ] && upload_compliance

case $rc in
    0) exit 0 ;;
    1) [ "$SSM_failOnUnhealthy" = true ] && exit 1
       exit 0 ;;
    *) exit "$rc" ;;
esac
