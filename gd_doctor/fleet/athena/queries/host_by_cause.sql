-- Host causes: the top finding and its row, over the latest report of each instance.
SELECT top_finding, row_id, COUNT(*) AS instances,
  SUM(CASE WHEN verdict = 'unknown' THEN 1 ELSE 0 END) AS unknown_verdicts
FROM gd_doctor_host_latest
WHERE verdict IN ('unhealthy', 'unknown')
GROUP BY 1, 2
ORDER BY instances DESC, top_finding;
