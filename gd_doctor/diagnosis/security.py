"""Diagnosis rules over ``platform.bpf_restrictions``: kernel lockdown and SELinux denials of
bpf. Both rest on other eBPF agents' behaviour (analogues): warnings phrased "may"
(knowledge/findings/security.json), never a certain cause of the agent's failure.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.diagnosis.base import Rule, RuleOutput, finding, rule
from gd_doctor.facts.security import BpfRestrictionFacts
from gd_doctor.model import Finding


@rule("platform.bpf_restrictions", reads=(BpfRestrictionFacts,))
def bpf_restrictions(facts: Optional[BpfRestrictionFacts]) -> RuleOutput:
    """Lockdown in confidentiality mode (or its refusals naming the agent), and SELinux's
    enforced denials of bpf for the agent's process."""
    if facts is None:
        return None
    out: List[Finding] = []
    if facts.lockdown == "confidentiality" or facts.lockdown_count:
        what = "bpf reads of kernel memory, kprobes and perf"
        if facts.lockdown_refusals:
            what = facts.lockdown_refusals[-1].split(": ", 2)[-1].split(" is restricted")[0]
        out.append(
            finding(
                "platform.lockdown-restricts-bpf",
                checks=(BpfRestrictionFacts,),
                evidence_from=(BpfRestrictionFacts,),
                mode=facts.lockdown or "refusals in the kernel log",
                what=what,
            )
        )
    if facts.avc_enforced:
        out.append(
            finding(
                "platform.selinux-denies-bpf",
                checks=(BpfRestrictionFacts,),
                evidence_from=(BpfRestrictionFacts,),
                perms=", ".join(facts.avc_perms) or "bpf",
                count=facts.avc_count,
            )
        )
    return out or None


RULES: Tuple[Rule, ...] = (bpf_restrictions,)
