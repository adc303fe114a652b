#!/bin/sh
# Step publishReport: print the full JSON report written by runGdDoctor. Run Command keeps
# each step's complete output in the S3 bucket given with --output-s3-bucket-name, under
# <prefix>/<command-id>/<instance-id>/awsrunShellScript/publishReport/stdout (and runGdDoctor/,
# installGdDoctor/ beside it; stderr next to each stdout).
GD_DOCTOR_REPORT=${GD_DOCTOR_REPORT:-/var/lib/gd-doctor/ssm-report.json}
if [ -s "$GD_DOCTOR_REPORT" ]; then
    cat "$GD_DOCTOR_REPORT"
else
    echo "gd-doctor wrote no report; see the runGdDoctor step's output." >&2
fi
exit 0
