"""``gpuguard simulate``: what would this container get on that node, and why?"""

from __future__ import annotations

import sys
from typing import BinaryIO

import click
import orjson

from gpuguard.cli.options import UsageFailure
from gpuguard.engine.pod import decide_pod
from gpuguard.engine.toolkit.decide import decide
from gpuguard.formats.decision_json import container_decision_dict, decision_dict, dumps
from gpuguard.formats.decision_text import container_decisions_text, decision_text
from gpuguard.model.errors import InputError
from gpuguard.sources.documents import load_document
from gpuguard.sources.pod_question import is_pod_question, read_pod_question
from gpuguard.sources.simulate_input import read_question

MAX_INPUT = 32 * 1024 * 1024


@click.command("simulate")
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Report format.")
@click.option("--batch", is_flag=True,
              help="FILE holds JSON Lines, one question per line; write one JSON result per line.")
def simulate_command(file: BinaryIO, fmt: str, batch: bool) -> None:
    """Decide which GPUs a container gets, with the rules that decided it.

    FILE (YAML or JSON, `-` for stdin) holds either a toolkit plus one
    container's OCI spec, or a pod (any workload) plus a node description.
    """
    if batch:
        _batch(file)
        return
    name = getattr(file, "name", "-")
    data = file.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise UsageFailure(f"{name}: larger than {MAX_INPUT // (1024 * 1024)} MiB")
    try:
        doc = load_document(data, name)
        if is_pod_question(doc):
            question = read_pod_question(doc)
            decisions = [
                d
                for pod in question.pods
                for d in decide_pod(pod, question.node, image_env=question.image_env, objects=question.objects)
            ]
            if fmt == "json":
                _out(dumps([container_decision_dict(d) for d in decisions], pretty=True) + b"\n")
            else:
                _out(container_decisions_text(decisions).encode())
            return
        single = read_question(doc)
    except InputError as exc:
        raise UsageFailure(str(exc)) from None
    decision = decide(single.container, single.toolkit, component=single.component)
    if fmt == "json":
        _out(dumps(decision_dict(decision), pretty=True) + b"\n")
    else:
        _out(decision_text(decision).encode())


def _batch(file: BinaryIO) -> None:
    """JSON Lines in, JSON Lines out, one for one and in order; a bad line does not stop the rest."""
    write = sys.stdout.buffer.write
    for number, line in enumerate(file, start=1):
        try:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"line {number}", f"invalid JSON: {exc}") from None
            question = read_question(doc)
            result = decision_dict(decide(question.container, question.toolkit, component=question.component))
        except InputError as exc:
            where = str(exc) if str(exc).startswith("line ") else f"line {number}: {exc}"
            result = {"error_input": where}
        write(orjson.dumps(result) + b"\n")
    sys.stdout.flush()


def _out(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
