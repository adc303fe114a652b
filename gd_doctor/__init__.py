"""gd-doctor: a host doctor for Amazon GuardDuty Runtime Monitoring on EC2 instances.

It runs on the instance, checks what the GuardDuty security agent needs, and names the row of
AWS's documented EC2 coverage-issue table that explains an *Unhealthy* status.
"""

__version__ = "0.1.0"
