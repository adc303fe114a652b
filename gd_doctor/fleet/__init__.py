"""``gd-doctor fleet``: from the console's coverage list to host causes, on a workstation.

Reads only what the AWS CLI and S3 already produce (``aws s3 sync`` of Run Command output, a
Resource Data Sync export, ``aws guardduty list-coverage`` JSON, EventBridge events as JSON
lines), so it needs no credentials and no AWS SDK. Modules:

* :mod:`.model`: the small typed records kept per instance;
* :mod:`.inputs`: streaming readers for every input layout, each bad input named with a reason;
* :mod:`.store`: latest-record-per-instance storage in a temporary SQLite database, so memory
  does not grow with the number of reports;
* :mod:`.summary`: the roll-ups of ``fleet summary``;
* :mod:`.render`: text, JSON (``summary.schema.json``) and CSV;
* :mod:`.targets`: ``aws ssm send-command`` invocations for ``fleet targets``;
* ``athena/``: Athena (Trino) table definitions and named queries for the same roll-ups.
"""
