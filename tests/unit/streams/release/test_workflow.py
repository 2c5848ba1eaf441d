"""The release workflow is valid YAML, ordered train -> replay -> promote, and every
`scorer` command it runs is accepted by the real command-line parser."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from streams.cli import build_parser
from streams.paths import project_root

WORKFLOW = project_root() / ".github" / "workflows" / "release.yml"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
SAMPLE_VALUES = {
    "inputs.model": "loans",
    "inputs.kind": "gbt",
    "inputs.force_reason": "seasonal campaign",
    "needs.train.outputs.version": "3",
    "steps.register.outputs.version": "3",
    "github.run_number": "17",
}


def _workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _scorer_commands() -> list[list[str]]:
    commands = []
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for line in script.splitlines():
                if ".venv/bin/scorer " not in line:
                    continue
                text = line.split(".venv/bin/scorer ", 1)[1].split("|")[0].split(")")[0]
                text = EXPRESSION.sub(lambda m: SAMPLE_VALUES[m.group(1)], text)
                commands.append(shlex.split(text))
    return commands


def test_the_workflow_parses_and_orders_its_jobs() -> None:
    data = _workflow()
    trigger = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "workflow_dispatch" in trigger
    jobs = data["jobs"]
    assert jobs["train"]["needs"] == "test"
    assert jobs["replay"]["needs"] == "train"
    assert set(jobs["promote"]["needs"]) == {"train", "replay"}
    assert jobs["promote"]["environment"] == "production"
    for job in jobs.values():
        assert job["steps"] and all("run" in s or "uses" in s for s in job["steps"])


def test_it_names_the_real_release_commands() -> None:
    commands = _scorer_commands()
    used = {tuple(c[:2]) if c[0] == "models" else (c[0],) for c in commands}
    assert used >= {("train",), ("replay",), ("models", "promote"), ("models", "history"),
                    ("models", "verify"), ("models", "show")}  # fmt: skip
    assert any("--force" in c and "--reason" in c for c in commands)


@pytest.mark.parametrize("command", _scorer_commands(), ids=lambda c: " ".join(c[:2]))
def test_every_command_is_accepted_by_the_cli(command: list[str]) -> None:
    args = build_parser().parse_args(command)  # argparse exits on anything it does not know
    assert callable(args.func)
