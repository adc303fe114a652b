-- Instance by instance, where the console and the host reports disagree (the join with the
-- ListCoverage export). 'agree' when both are healthy, or both unhealthy and the console's row
-- is among the rows of the host's FAIL/WARN findings.
WITH j AS (
  SELECT COALESCE(c.instance_id, h.instance_id) AS instance_id,
    COALESCE(c.account_id, h.account_id) AS account_id,
    COALESCE(c.region, h.region) AS region,
    c.status, c.row_id AS console_row, c.updated_at,
    h.verdict, h.top_finding, h.row_id AS host_row, h.report_time,
    cardinality(filter(h.problems, f -> f.issue_id = c.row_id)) > 0 AS console_row_on_host
  FROM gd_doctor_console c
  FULL OUTER JOIN gd_doctor_host_latest h ON h.instance_id = c.instance_id
)
SELECT instance_id, account_id, region, status, console_row, verdict, top_finding, host_row,
  report_time, updated_at,
  CASE
    WHEN status IS NULL THEN 'not in console'
    WHEN verdict IS NULL THEN 'no host report'
    WHEN status = 'HEALTHY' AND verdict = 'healthy' THEN 'agree'
    WHEN status = 'HEALTHY' AND verdict = 'unhealthy' THEN 'console healthy, host unhealthy'
    WHEN status = 'HEALTHY' THEN 'console healthy, host unknown'
    WHEN verdict = 'healthy' THEN 'console unhealthy, host healthy'
    WHEN verdict = 'unknown' THEN 'console unhealthy, host unknown'
    WHEN console_row IS NOT NULL AND console_row_on_host THEN 'agree'
    ELSE 'rows differ'
  END AS agreement,
  from_iso8601_timestamp(report_time) < from_iso8601_timestamp(updated_at) AS stale
FROM j
ORDER BY account_id, region, instance_id;
