#!/bin/sh
# Step runGdDoctor: run gd-doctor and exit with its exit code (0 no problem found, 1 problems
# found, 2 usage error, 3 gd-doctor failed or is missing). With format=ssm it prints the compact
# output, verdict first and at most 2,500 characters, which is what the console shows. The full
# JSON report goes to $GD_DOCTOR_REPORT for the publishReport step.
if [ -z "${SSM_format+x}" ]; then SSM_format='{{ format }}'; fi
if [ -z "${SSM_timeout+x}" ]; then SSM_timeout='{{ timeout }}'; fi
if [ -z "${SSM_extraArguments+x}" ]; then SSM_extraArguments='{{ extraArguments }}'; fi
GD_DOCTOR=${GD_DOCTOR:-/usr/bin/gd-doctor}
GD_DOCTOR_REPORT=${GD_DOCTOR_REPORT:-/var/lib/gd-doctor/ssm-report.json}

mkdir -p "$(dirname "$GD_DOCTOR_REPORT")" && chmod 0700 "$(dirname "$GD_DOCTOR_REPORT")"
rm -f "$GD_DOCTOR_REPORT"
if [ ! -x "$GD_DOCTOR" ]; then
    echo "UNKNOWN: gd-doctor is not installed on this instance ($GD_DOCTOR missing)."
    echo "Install the package, or run this document with installFrom set."
    exit 3
fi
set -f  # extraArguments is split into words, never globbed
# shellcheck disable=SC2086
"$GD_DOCTOR" check --format "$SSM_format" --timeout "$SSM_timeout" \
    --output "$GD_DOCTOR_REPORT" $SSM_extraArguments
exit $?
