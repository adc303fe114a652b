-- gd-doctor's custom inventory as Resource Data Sync writes it (SyncFormat JsonSerDe):
-- s3://BUCKET/PREFIX/Custom:GdDoctor/accountid=<id>/region=<r>/resourcetype=ManagedInstanceInventory/<instance-id>.json
-- one JSON object per line. The attribute names are those 'gd-doctor fleet' reads (flat strings,
-- as custom inventory requires). After new accounts or Regions arrive: MSCK REPAIR TABLE gd_doctor_inventory;
CREATE EXTERNAL TABLE IF NOT EXISTS gd_doctor_inventory (
  resourceid string,
  capturetime string,
  schemaversion string,
  verdict string,
  top_finding string,
  row_id string,
  issue_number string,
  os string,
  kernel string,
  agent_version string,
  checked_at string,
  instance_id string,
  account_id string
)
PARTITIONED BY (accountid string, region string, resourcetype string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://DOC-EXAMPLE-BUCKET/inventory/Custom:GdDoctor/';
