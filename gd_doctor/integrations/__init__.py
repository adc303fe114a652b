"""Outputs into AWS's own fleet views, each written only when an option asks for it.

* :mod:`.inventory`: an SSM custom inventory item (``Custom:GdDoctor``) for Resource Data Sync
  and Athena;
* :mod:`.compliance`: the items of ``aws ssm put-compliance-items`` (``Custom:GdDoctor``);
* :mod:`.emf`: one CloudWatch Embedded Metric Format event per run, to the CloudWatch agent.

Every function here is a pure builder plus one small writer or sender; a failure is a one-line
message for stderr and never changes the diagnosis.
"""

NAME = "GdDoctor"
TYPE_NAME = f"Custom:{NAME}"
