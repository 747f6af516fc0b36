"""python -m ml train sft|dpo, python -m ml eval, python -m ml serve.

    python -m ml train sft --data var/exports/v3 --out var/models/sft-v3 --lora --epochs 2
    python -m ml train dpo --data var/exports/v3 --model var/models/sft-v3 --out var/models/dpo-v3
    python -m ml eval --model smollm2 --model var/models/sft-v3 --data var/exports/v3 --json r.json
    python -m ml serve --model var/models/dpo-v3 --port 8001

Every option is a field of the command's config dataclass (`SftConfig`, `DpoConfig`,
`EvalConfig`, `ServeConfig`), documented there; `--no-X` turns a yes/no option off.
The default model is SmolLM2-135M-Instruct (`--model smollm2`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from typing import Any


def add_fields(parser: argparse.ArgumentParser, config: type, **renamed: str) -> None:
    """One option per field of the dataclass `config` (`--max-length` for max_length)."""
    hints = typing.get_type_hints(config)
    for field in dataclasses.fields(config):
        option = "--" + renamed.get(field.name, field.name).replace("_", "-")
        kind = hints[field.name]
        required = field.default is dataclasses.MISSING and (
            field.default_factory is dataclasses.MISSING
        )
        default = None if required else field.default
        if kind is bool:
            parser.add_argument(
                option, dest=field.name, action=argparse.BooleanOptionalAction, default=default
            )
            continue
        if typing.get_origin(kind) is list:  # --model A --model B
            parser.add_argument(option, dest=field.name, action="append", default=[])
            continue
        if typing.get_origin(kind) in (types.UnionType, typing.Union):  # X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        parser.add_argument(
            option,
            dest=field.name,
            type=kind,
            default=default,
            required=required,
            help=f"default: {default}" if not required else None,
        )


def parse(argv: list[str]) -> tuple[str, Any]:
    from ml.evaluate import EvalConfig
    from ml.preference import DpoConfig
    from ml.serve import ServeConfig
    from ml.sft import SftConfig

    parser = argparse.ArgumentParser(
        prog="python -m ml",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="fine-tune a model on an export")
    stages = train.add_subparsers(dest="stage", required=True)
    add_fields(stages.add_parser("sft", help="supervised fine-tuning (sft config)"), SftConfig)
    add_fields(stages.add_parser("dpo", help="DPO on the preference config"), DpoConfig)
    add_fields(
        commands.add_parser("eval", help="loss, perplexity, preference accuracy"),
        EvalConfig,
        models="model",
        json_path="json",
    )
    add_fields(commands.add_parser("serve", help="OpenAI-compatible chat server"), ServeConfig)
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    if command == "train":
        stage = args.pop("stage")
        return stage, (SftConfig if stage == "sft" else DpoConfig)(**args)
    return command, (EvalConfig if command == "eval" else ServeConfig)(**args)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        # Before torch loads OpenMP: idle threads sleep instead of spinning. A decode step is
        # hundreds of small operators; when the server shares the CPU (the web process,
        # PostgreSQL, other jobs), spinning threads that lose their core stall every one of
        # them: measured 0.6 s instead of 0.07 s per step on a busy 2-core machine.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    command, config = parse(argv)
    if command == "sft":
        from ml.sft import run_sft

        run_sft(config)
    elif command == "dpo":
        from ml.preference import run_dpo

        run_dpo(config)
    elif command == "eval":
        from ml.evaluate import run_eval

        run_eval(config)
    else:
        from ml.serve import serve

        serve(config)


if __name__ == "__main__":
    main()
