-- Unhealthy EC2 instances per console issue (the row of AWS's table; unrecognised issues by text).
SELECT row_id, CASE WHEN row_id IS NULL THEN issue END AS issue, COUNT(*) AS instances
FROM gd_doctor_console
WHERE status = 'UNHEALTHY'
GROUP BY 1, 2
ORDER BY instances DESC, row_id;
