-- Console-unhealthy instances with no host report, per console issue. For row 1 ("Waiting for
-- SSM notification") these are usually not SSM managed: Run Command cannot reach them.
SELECT c.row_id, CASE WHEN c.row_id IS NULL THEN c.issue END AS issue, COUNT(*) AS instances,
  min(c.instance_id) AS example_instance
FROM gd_doctor_console c
LEFT JOIN gd_doctor_host_latest h ON h.instance_id = c.instance_id
WHERE c.status = 'UNHEALTHY' AND h.instance_id IS NULL
GROUP BY 1, 2
ORDER BY instances DESC, c.row_id;
