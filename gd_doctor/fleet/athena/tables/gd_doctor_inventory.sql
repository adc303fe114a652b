-- gd-doctor's custom inventory as Resource Data Sync writes it (SyncFormat JsonSerDe):
-- s3://BUCKET/PREFIX/Custom:GdDoctor/accountid=<id>/region=<r>/resourcetype=ManagedInstanceInventory/<instance-id>.json
-- one JSON object per line. The attribute names are those 'gd-doctor check --inventory' writes
-- (gd_doctor/integrations/inventory.py) and 'gd-doctor fleet' reads (flat strings,
-- as custom inventory requires). After new accounts or Regions arrive: MSCK REPAIR TABLE gd_doctor_inventory;
CREATE EXTERNAL TABLE IF NOT EXISTS gd_doctor_inventory (
  resourceid string,
  capturetime string,
  schemaversion string,
  verdict string,
  verdict_reason string,
  problem_count string,
  warning_count string,
  top_finding string,
  top_finding_title string,
  issue_number string,
  row_id string,
  issue_type string,
  issue_message string,
  finding_ids string,
  agent_version string,
  agent_unit_state string,
  management_type string,
  ssm_agent_version string,
  kernel string,
  os string,
  architecture string,
  instance_id string,
  account_id string,
  tool_version string,
  knowledge_date string,
  checked_at string,
  budget_exhausted string
)
PARTITIONED BY (accountid string, region string, resourcetype string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://DOC-EXAMPLE-BUCKET/inventory/Custom:GdDoctor/';
