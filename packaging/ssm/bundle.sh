#!/bin/sh
# Step makeBundle (optional, parameter bundle): write a redacted support bundle with
# 'gd-doctor bundle' and, when bundleUpload names an s3:// prefix and the AWS CLI is present,
# upload it there under <prefix>/<instance-or-host>/. bundle=unhealthy makes one only when the
# runGdDoctor step's report says the verdict is not healthy, so a fleet run collects bundles of
# exactly the unhealthy instances. This step never changes the command's result: it exits 0.
if [ -z "${SSM_bundle+x}" ]; then SSM_bundle='{{ bundle }}'; fi
if [ -z "${SSM_bundleUpload+x}" ]; then SSM_bundleUpload='{{ bundleUpload }}'; fi
if [ -z "${SSM_timeout+x}" ]; then SSM_timeout='{{ timeout }}'; fi
GD_DOCTOR=${GD_DOCTOR:-/usr/bin/gd-doctor}
GD_DOCTOR_REPORT=${GD_DOCTOR_REPORT:-/var/lib/gd-doctor/ssm-report.json}
BUNDLE_DIR=${GD_DOCTOR_BUNDLE_DIR:-/var/lib/gd-doctor}

case "$SSM_bundle" in
    always) ;;
    unhealthy)
        if grep -q '"verdict": "healthy"' "$GD_DOCTOR_REPORT" 2>/dev/null; then
            echo "makeBundle: verdict healthy, no bundle (bundle=unhealthy)."
            exit 0
        fi ;;
    *) echo "makeBundle: skipped (bundle=$SSM_bundle)."; exit 0 ;;
esac
if [ ! -x "$GD_DOCTOR" ]; then
    echo "makeBundle: gd-doctor is not installed ($GD_DOCTOR missing)."
    exit 0
fi
mkdir -p "$BUNDLE_DIR" && chmod 0700 "$BUNDLE_DIR"
NAME=$(hostname 2>/dev/null | tr -c 'A-Za-z0-9.\n-' '-')
OUT="$BUNDLE_DIR/gd-doctor-bundle-${NAME:-host}-$(date -u +%Y%m%dT%H%M%SZ).tar.gz"
if ! "$GD_DOCTOR" bundle --output "$OUT" --timeout "$SSM_timeout"; then
    echo "makeBundle: gd-doctor bundle failed; no bundle."
    exit 0
fi
if [ -z "$SSM_bundleUpload" ]; then
    echo "makeBundle: bundle kept on the instance at $OUT (bundleUpload is empty)."
    exit 0
fi
if ! command -v aws >/dev/null 2>&1; then
    echo "makeBundle: no AWS CLI on this instance; bundle kept at $OUT."
    exit 0
fi
if timeout 300 aws s3 cp --only-show-errors "$OUT" "${SSM_bundleUpload%/}/${NAME:-host}/$(basename "$OUT")"; then
    echo "makeBundle: uploaded to ${SSM_bundleUpload%/}/${NAME:-host}/$(basename "$OUT")"
else
    echo "makeBundle: upload failed; bundle kept at $OUT."
fi
exit 0
