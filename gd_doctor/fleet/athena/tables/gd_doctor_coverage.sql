-- A ListCoverage export, one resource per line, one prefix per Region (the response carries no
-- Region):  aws guardduty list-coverage --detector-id ID --region R > coverage.json
--           jq -c '.Resources[]' coverage.json > coverage.jsonl
--           aws s3 cp coverage.jsonl s3://BUCKET/coverage/region=R/coverage.jsonl
-- then MSCK REPAIR TABLE gd_doctor_coverage; Field names are the AWS CLI's (PascalCase); the JSON
-- SerDe matches them case-insensitively.
CREATE EXTERNAL TABLE IF NOT EXISTS gd_doctor_coverage (
  resourceid string,
  detectorid string,
  accountid string,
  coveragestatus string,
  issue string,
  updatedat string,
  resourcedetails struct<resourcetype:string,ec2instancedetails:struct<instanceid:string,instancetype:string,clusterarn:string,managementtype:string,agentdetails:struct<version:string>>>
)
PARTITIONED BY (region string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://DOC-EXAMPLE-BUCKET/coverage/';
