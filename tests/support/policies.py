"""The policies the project ships and documents, as tests read them: the starter ConfigMap's
policy (step 1), its commented step 2 made live, and the docs' annotated example."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGMAP = ROOT / "packaging" / "kubernetes" / "policy-configmap.yaml"
STEP_TWO = "# Step 2"


def starter() -> str:
    """The ConfigMap's policy.yaml, as shipped."""
    return yaml.safe_load(CONFIGMAP.read_text())["data"]["policy.yaml"]


def step_two() -> str:
    """Step 2 as its comment says to take it: `rules: []` replaced by the commented block with
    its `# ` taken away."""
    text = starter()
    head, _, tail = text.partition(STEP_TWO)
    assert "rules: []\n" in head, "step 1 lost its `rules: []`"
    live = [line[2:] for line in tail.splitlines() if line.startswith("# ")]
    # the block starts after step 2's own prose, at its first key
    start = next(i for i, line in enumerate(live) if line.startswith("attestation:"))
    return head.replace("rules: []\n", "") + "\n".join(live[start:]) + "\n"


def with_attestation(policy: str, roots: list[str], registry: list[str] | None = None) -> str:
    """`policy` with `roots` (PEM file paths) as its attestation roots, the one change a test
    CA needs, and, where given, `registry` (flow mappings) in place of its registry."""
    lines = policy.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("attestation:"))
    lines.insert(at + 1, "  roots: [" + ", ".join(roots) + "]")
    if registry is not None:
        start = next(i for i, line in enumerate(lines) if line.startswith("  registry:"))
        end = start + 1
        while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
            end += 1
        lines[start + 1:end] = [f"    - {entry}" for entry in registry]
    return "\n".join(lines) + "\n"


def documented() -> str:
    """The annotated policy on docs/admin/policy.md, "Every field, annotated"."""
    from .doccommands import block

    example = block("docs/admin/policy.md", "Every field, annotated", "yaml").text
    return example.replace("3f9a...", "3f" * 32)
