-- The latest report per instance from the Run Command bucket (what 'fleet summary' keeps):
-- top finding = first FAIL finding, else first WARN; reports = how many reports the instance had.
CREATE OR REPLACE VIEW gd_doctor_host_latest AS
WITH r AS (
  SELECT
    COALESCE(host.instance_id, regexp_extract("$path", '/(i-[0-9a-f]{8,17})/', 1)) AS instance_id,
    host.account_id AS account_id,
    host.region AS region,
    started_at AS report_time,
    verdict,
    COALESCE(element_at(filter(findings, f -> f.severity = 'fail'), 1),
             element_at(filter(findings, f -> f.severity = 'warn'), 1)) AS top,
    filter(findings, f -> f.severity IN ('fail', 'warn')) AS problems,
    host.os AS os,
    host.kernel AS kernel,
    (element_at(filter(checks, c -> c.id = 'agent.package'), 1)).data.version AS agent_version,
    "$path" AS source
  FROM gd_doctor_reports
  WHERE verdict IN ('healthy', 'unhealthy', 'unknown') AND schema_version IN (1, 2)
),
ranked AS (
  SELECT r.*,
    row_number() OVER (PARTITION BY instance_id
                       ORDER BY from_iso8601_timestamp(report_time) DESC NULLS LAST, source DESC) AS rn,
    count(*) OVER (PARTITION BY instance_id) AS reports
  FROM r
  WHERE instance_id IS NOT NULL
)
SELECT instance_id, account_id, region, report_time, verdict,
  top.id AS top_finding, top.issue_id AS row_id, problems, os, kernel, agent_version, reports, source
FROM ranked
WHERE rn = 1;
