-- Coverage as the console computes it, (healthy / all) x 100, per account and Region: from the
-- console's data and, beside it, from the latest host report per instance.
WITH j AS (
  SELECT COALESCE(c.account_id, h.account_id) AS account_id,
    COALESCE(c.region, h.region) AS region, c.status, h.verdict
  FROM gd_doctor_console c
  FULL OUTER JOIN gd_doctor_host_latest h ON h.instance_id = c.instance_id
)
SELECT account_id, region,
  SUM(CASE WHEN status = 'HEALTHY' THEN 1 ELSE 0 END) AS console_healthy,
  SUM(CASE WHEN status IS NOT NULL THEN 1 ELSE 0 END) AS console_total,
  ROUND(100.0 * SUM(CASE WHEN status = 'HEALTHY' THEN 1 ELSE 0 END)
        / NULLIF(SUM(CASE WHEN status IS NOT NULL THEN 1 ELSE 0 END), 0), 1) AS console_percent,
  SUM(CASE WHEN verdict = 'healthy' THEN 1 ELSE 0 END) AS host_healthy,
  SUM(CASE WHEN verdict IS NOT NULL THEN 1 ELSE 0 END) AS host_total,
  ROUND(100.0 * SUM(CASE WHEN verdict = 'healthy' THEN 1 ELSE 0 END)
        / NULLIF(SUM(CASE WHEN verdict IS NOT NULL THEN 1 ELSE 0 END), 0), 1) AS host_percent
FROM j
GROUP BY account_id, region
ORDER BY account_id, region;
