-- The same view from the Resource Data Sync table instead (create one of the two).
CREATE OR REPLACE VIEW gd_doctor_host_latest AS
WITH ranked AS (
  SELECT i.*,
    row_number() OVER (PARTITION BY COALESCE(resourceid, instance_id)
                       ORDER BY from_iso8601_timestamp(COALESCE(checked_at, capturetime)) DESC NULLS LAST) AS rn,
    count(*) OVER (PARTITION BY COALESCE(resourceid, instance_id)) AS reports
  FROM gd_doctor_inventory i
  WHERE lower(verdict) IN ('healthy', 'unhealthy', 'unknown')
)
SELECT COALESCE(resourceid, instance_id) AS instance_id, COALESCE(account_id, accountid) AS account_id,
  region, COALESCE(checked_at, capturetime) AS report_time, lower(verdict) AS verdict,
  top_finding, row_id, os, kernel, agent_version, reports
FROM ranked
WHERE rn = 1;
