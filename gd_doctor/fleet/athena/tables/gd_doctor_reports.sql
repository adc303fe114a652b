-- gd-doctor JSON reports (schema_version 1 and 2) in the Run Command output bucket:
-- s3://BUCKET/PREFIX/<command-id>/<instance-id>/awsrunShellScript/<step>/stdout
-- Athena's JSON SerDe reads one JSON object per line: the report must be printed on one line
-- (see docs/fleet-summary.md); the other files under the prefix (stderr, --format ssm text) are
-- skipped as malformed rows (all columns NULL), which every query filters out.
-- Columns are a subset of gd_doctor/knowledge/report.schema.json (a test checks them);
-- host.account_id is the field issue 12 adds (NULL in older reports).
CREATE EXTERNAL TABLE IF NOT EXISTS gd_doctor_reports (
  schema_version int,
  tool struct<name:string,version:string,knowledge_date:string>,
  started_at string,
  verdict string,
  verdict_reason string,
  host struct<hostname:string,os:string,kernel:string,arch:string,instance_id:string,region:string,account_id:string,is_ec2:boolean>,
  findings array<struct<id:string,severity:string,rank:int,issue_id:string,issue_number:int,steps:array<string>>>,
  checks array<struct<id:string,status:string,data:struct<version:string>>>
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://DOC-EXAMPLE-BUCKET/gd-doctor/';
