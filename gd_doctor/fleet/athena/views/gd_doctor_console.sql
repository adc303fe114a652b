-- The console's view: the latest ListCoverage record per EC2 instance, its issue mapped to the
-- row of AWS's coverage-issue table (patterns of gd_doctor/knowledge/coverage_issues.json over
-- the issue folded as 'gd-doctor explain' folds it; a test keeps the two in step).
CREATE OR REPLACE VIEW gd_doctor_console AS
WITH c AS (
  SELECT
    COALESCE(resourcedetails.ec2instancedetails.instanceid, resourceid) AS instance_id,
    accountid AS account_id,
    region,
    upper(coveragestatus) AS status,
    COALESCE(issue, '') AS issue,
    updatedat AS updated_at,
    resourcedetails.ec2instancedetails.managementtype AS management_type,
    trim(regexp_replace(regexp_replace(replace(replace(
      regexp_replace(regexp_replace(regexp_replace(lower(COALESCE(issue, '')),
        '[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}', ' <requestid> '),
        'vpc-[0-9a-f]{8,17}', ' <vpcid> '),
        '[0-9]{12}', ' <accountid> '),
      '''', ''), '’', ''),
      '[^a-z0-9_<> ]', ' '),
      ' +', ' ')) AS norm
  FROM gd_doctor_coverage
  WHERE resourcedetails.resourcetype = 'EC2'
),
ranked AS (
  SELECT c.*,
    row_number() OVER (PARTITION BY instance_id
                       ORDER BY from_iso8601_timestamp(updated_at) DESC NULLS LAST) AS rn
  FROM c
  WHERE instance_id IS NOT NULL AND status IN ('HEALTHY', 'UNHEALTHY')
)
SELECT instance_id, account_id, region, status, issue, updated_at, management_type,
  CASE WHEN status <> 'UNHEALTHY' THEN NULL
    WHEN regexp_like(norm, '^waiting for ssm notification$') THEN 'waiting-for-ssm'
    WHEN norm = '' THEN 'no-agent-reporting'
    WHEN regexp_like(norm, '^agent disconnected$') THEN 'agent-disconnected'
    WHEN regexp_like(norm, '^instances with exclusion tags are excluded from runtime monitoring$') THEN 'exclusion-tag'
    WHEN regexp_like(norm, '^kernel version is lower than the supported version$') THEN 'kernel-lower'
    WHEN regexp_like(norm, '^kernel version is higher than the supported version$') THEN 'kernel-higher'
    WHEN regexp_like(norm, '^unable to retrieve instance identity document$') THEN 'identity-document'
    WHEN regexp_like(norm, '^guardduty ssm association already exists in your account$') THEN 'association-already-exists'
    WHEN regexp_like(norm, '^your account has too many ssm associations$') THEN 'too-many-associations'
    WHEN regexp_like(norm, '^guardduty ssm association does not exist in your account$') THEN 'association-update-missing'
    WHEN regexp_like(norm, '^architectural requirements or other prerequisites are not met$') THEN 'association-execution-failed'
    WHEN regexp_like(norm, '^vpc endpoint creation not supported for shared vpc <vpcid>$') THEN 'shared-vpc-unsupported'
    WHEN regexp_like(norm, '^owner account id <accountid> for shared vpc <vpcid> doesnt have either runtime monitoring automated agent configuration or both enabled$') THEN 'shared-vpc-owner-not-enabled'
    WHEN regexp_like(norm, '^enabling private dns requires both enablednssupport and enablednshostnames vpc attributes set to true for <vpcid>( service ec2 status code ?400 request id <requestid>)?$') THEN 'private-dns-attributes'
    WHEN regexp_like(norm, '^shared vpc endpoint deletion not allowed for account id <accountid> shared vpc <vpcid> owner account id <accountid>$') THEN 'shared-vpc-endpoint-deletion'
  END AS row_id
FROM ranked
WHERE rn = 1;
