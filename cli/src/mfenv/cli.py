"""
The `mfenv` command: create, list, show, use, run and delete private Metaflow environments through the
mfenv API, signed with the teammate's own AWS credentials. See cli/README.md.
"""
import argparse
import json
import os
import sys
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote

import botocore.exceptions

from . import __version__, credential_process
from .api import Api, Response, find_api_url, region_of_url
from .errors import EXIT_CODES_HELP, CliError, Exit
from .files import (
    aws_config_path,
    metaflow_config_update,
    metaflow_home,
    profile_name_for,
    profile_section,
    profile_update,
    read_written_profile,
    write_metaflow_config,
    write_profile,
)
from .identity import User, child_environment, resolve_user, shell_lines
from .progress import Display, wait_for

DESCRIPTION = """\
Your own Metaflow back end on AWS (an S3 bucket, a Batch Spot queue, an access role), through the mfenv API.

  mfenv create demo --wait                  create it and wait until it is READY
  mfenv run demo -- python flow.py run      run a flow with it (as its access role)
  eval "$(mfenv use demo)"                  or select it in this shell
  mfenv resize demo --max-vcpus 32 --wait  more vCPUs (or --gpu/--no-gpu, --scheduling/--no-scheduling)
  mfenv delete demo --purge --wait          remove it, data included

The API is found from --api, else MFENV_API, else the ApiUrl output of the CloudFormation stack (--stack,
default mfenv) in your current region. Requests are signed with your usual AWS credentials (AWS_PROFILE,
--profile, IAM Identity Center, environment keys, instance roles)."""


def _timeout(text: str) -> float:
    """15m, 900, 90s or 1h as seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    scale = units.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: give e.g. 900, 90s, 15m or 1h") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the timeout must be more than zero")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # The same options before or after the command; after it, they only override when given.
    default = {"default": argparse.SUPPRESS} if suppress else {}
    group = parser.add_argument_group("where and as whom")
    group.add_argument("--api", metavar="URL", help="the API's base URL (default: MFENV_API, else the stack's ApiUrl output)", **default)
    group.add_argument("--stack", metavar="NAME", help="CloudFormation stack to find the API in (default: mfenv)", **(default or {"default": "mfenv"}))
    group.add_argument("--region", help="AWS region of the API (default: from the API URL, else your AWS configuration)", **default)
    group.add_argument("--profile", help="your AWS profile (default: AWS_PROFILE, else your default credentials)", **default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mfenv",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mfenv {__version__}")
    _add_globals(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, **kwargs) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        _add_globals(sub, suppress=True)
        return sub

    def wait_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--wait", action="store_true", help="wait until it settles, showing progress")
        sub.add_argument("--timeout", type=_timeout, default=15 * 60, metavar="DURATION",
                         help="with --wait: give up after this long (e.g. 900, 20m; default 15m)")
        sub.add_argument("--json", action="store_true", help="print the environment as JSON (after waiting, its final state)")

    sub = command("create", "create an environment")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--max-vcpus", type=_positive, metavar="N", help="vCPU ceiling of its compute environment (default: the deployment's)")
    sub.add_argument("--no-gpu", action="store_true", help="leave out the GPU instance families")
    sub.add_argument("--scheduling", action="store_true",
                     help="also what `python flow.py step-functions create` needs: scheduled flows on AWS Step Functions")
    wait_options(sub)

    sub = command("list", "list your environments")
    sub.add_argument("--json", action="store_true", help="print the API's answer as JSON")

    sub = command("show", "show one environment")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--json", action="store_true", help="print the environment as JSON")

    sub = command("use", "write its Metaflow config and AWS profile, print the exports that select them")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--force", action="store_true", help="replace a config file or AWS profile that mfenv did not write")

    sub = command("run", "run a command with the environment selected: mfenv run NAME -- COMMAND...")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--force", action="store_true", help="replace a config file or AWS profile that mfenv did not write")

    sub = command("resize", "change an environment's vCPUs, GPUs or scheduled flows (its queue, bucket and config stay)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--max-vcpus", type=_positive, metavar="N", help="the new vCPU ceiling of its compute environment")
    sub.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                     help="add (--gpu) or leave out (--no-gpu) the GPU instance families")
    sub.add_argument("--scheduling", action=argparse.BooleanOptionalAction, default=None,
                     help="turn scheduled flows on AWS Step Functions on (--scheduling) or off (--no-scheduling)")
    wait_options(sub)

    sub = command("delete", "delete an environment (its bucket is kept if it holds data, unless --purge)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("--purge", action="store_true", help="delete the bucket's data too")
    wait_options(sub)

    return parser


class Context:
    """One invocation: its options, its environment, and (once needed) the teammate and the API."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str], stdout, stderr):
        self.args = args
        self.environ = environ
        self.stdout = stdout
        self.stderr = stderr
        self._user: Optional[User] = None
        self._api: Optional[Api] = None

    @property
    def config_path(self):
        return aws_config_path(self.environ)

    @property
    def user(self) -> User:
        if self._user is None:
            path = self.config_path
            self._user = resolve_user(
                getattr(self.args, "profile", None), self.environ, lambda profile: read_written_profile(path, profile)
            )
        return self._user

    def configured_region(self) -> Optional[str]:
        session = self.user.session
        return session.get_config_variable("region") or self.environ.get("AWS_REGION") or None

    @property
    def api(self) -> Api:
        if self._api is None:
            user = self.user
            explicit_region = getattr(self.args, "region", None)
            url = find_api_url(
                getattr(self.args, "api", None),
                self.environ,
                getattr(self.args, "stack", None) or "mfenv",
                explicit_region or self.configured_region(),
                lambda region: user.session.create_client("cloudformation", region_name=region),
            )
            region = explicit_region or region_of_url(url) or self.configured_region()
            if not region:
                raise CliError(
                    f"Which AWS region is the API at {url} in? Give --region, or set AWS_REGION or a region in your AWS profile.",
                    Exit.USAGE,
                )
            self._api = Api(url, user.credentials, region)
        return self._api

    def print(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def note(self, text: str) -> None:
        self.stderr.write(text + "\n")

    def print_json(self, value) -> None:
        self.print(json.dumps(value, indent=2, sort_keys=True))


# ---- output ----


def _owner_short(owner: str) -> str:
    """arn:aws:iam::123456789012:user/alice → user/alice (the account is the same for everyone)."""
    return owner.split(":", 5)[-1] if owner.startswith("arn:") else owner


def format_table(environments: List[dict]) -> str:
    if not environments:
        return "You have no environments: mfenv create NAME makes one."
    rows = [("NAME", "STATUS", "VCPUS", "GPU", "OWNER", "UPDATED")]
    for environment in environments:
        spec = environment.get("spec") or {}
        status = environment.get("status", "")
        if environment.get("retainedBucket"):
            status += " (bucket kept)"
        rows.append((
            environment.get("name", ""),
            status,
            str(spec.get("maxVcpus", "")),
            "yes" if spec.get("gpu") else "no",
            _owner_short(environment.get("owner", "")),
            environment.get("updatedAt", ""),
        ))
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def warnings_of(environment) -> List[str]:
    """The `warnings` of an environment: what limits it (a low Spot quota, no GPU families...) and how to lift it."""
    warnings = environment.get("warnings") if isinstance(environment, dict) else None
    return [str(warning) for warning in warnings] if isinstance(warnings, list) else []


def format_environment(environment: dict) -> str:
    name = environment.get("name", "?")
    status = environment.get("status", "?")
    spec = environment.get("spec") or {}
    resources = environment.get("resources") or {}
    progress = environment.get("progress") if isinstance(environment.get("progress"), dict) else None
    lines = [f"{name}  {status}"]
    if environment.get("statusReason"):
        lines.append(f"  {environment['statusReason']}")
    fields = [
        ("step", progress.get("step") if progress else None),
        ("owner", environment.get("owner")),
        ("region", environment.get("region")),
        ("max vCPUs", spec.get("maxVcpus")),
        ("GPU", None if "gpu" not in spec else ("yes" if spec.get("gpu") else "no")),
        ("scheduling", "yes" if spec.get("scheduling") else None),
        # Metaflow names every state machine (and its schedule rule) of the environment `<prefix>_<flow>`.
        ("flows as", f"{resources['sfnStateMachinePrefix']}_<FlowName>" if resources.get("sfnStateMachinePrefix") else None),
        ("bucket", resources.get("bucket")),
        ("kept bucket", environment.get("retainedBucket")),
        ("job queue", resources.get("jobQueueArn")),
        ("access role", resources.get("accessRoleArn")),
        ("created", environment.get("createdAt")),
        ("updated", environment.get("updatedAt")),
    ]
    lines += [f"  {label:<12} {value}" for label, value in fields if value not in (None, "")]
    lines += [f"  warning: {warning}" for warning in warnings_of(environment)]
    if status == "READY":
        lines.append(f"Use it: mfenv run {name} -- python flow.py run   (or: eval \"$(mfenv use {name})\")")
    return "\n".join(lines)


# ---- commands ----


def _path_of(name: str) -> str:
    # The API checks the name; quoting keeps whatever was typed inside one path segment.
    return f"/environments/{quote(name, safe='')}"


def _finish(ctx: Context, name: str, operation: str, response: Response) -> int:
    args = ctx.args
    if not args.wait:
        environment = response.body
        if args.json:
            ctx.print_json(environment)
        else:
            status = environment.get("status", "?") if isinstance(environment, dict) else "?"
            ctx.note(f"{name} is {status}. mfenv show {name} tells where it is (or pass --wait).")
        return Exit.OK
    code, environment = wait_for(ctx.api, name, operation, response, args.timeout, Display(name, ctx.stderr))
    if args.json:
        ctx.print_json(environment)
    elif code == Exit.OK and operation == "create":
        ctx.note(f"Use it: mfenv run {name} -- python flow.py run   (or: eval \"$(mfenv use {name})\")")
    elif code == Exit.OK and environment.get("statusReason"):
        ctx.note(environment["statusReason"])
    return code


def cmd_create(ctx: Context) -> int:
    body: Dict[str, object] = {"name": ctx.args.name}
    if ctx.args.max_vcpus is not None:
        body["maxVcpus"] = ctx.args.max_vcpus
    if ctx.args.no_gpu:
        body["gpu"] = False
    if ctx.args.scheduling:
        body["scheduling"] = True
    response = ctx.api.request("POST", "/environments", body=body, ok=(202,))
    if not ctx.args.json:
        # What the API's preflight found that limits the environment: said before anything else, so it is seen.
        for warning in warnings_of(response.body):
            ctx.note(f"warning: {warning}")
    return _finish(ctx, ctx.args.name, "create", response)


def resize_body(args: argparse.Namespace) -> Dict[str, object]:
    """The PATCH body: only what was given (a field left out keeps its value)."""
    body: Dict[str, object] = {}
    if args.max_vcpus is not None:
        body["maxVcpus"] = args.max_vcpus
    if args.gpu is not None:
        body["gpu"] = args.gpu
    if args.scheduling is not None:
        body["scheduling"] = args.scheduling
    return body


def cmd_resize(ctx: Context) -> int:
    args = ctx.args
    body = resize_body(args)
    if not body:
        raise CliError("Say what to change: --max-vcpus N, --gpu or --no-gpu, --scheduling or --no-scheduling.", Exit.USAGE)
    # 200: nothing to change (already so); 202: the update has started.
    response = ctx.api.request("PATCH", _path_of(args.name), body=body, ok=(200, 202))
    if not args.json:
        for warning in warnings_of(response.body):
            ctx.note(f"warning: {warning}")
    if response.status == 200:
        if args.json:
            ctx.print_json(response.body)
        else:
            ctx.note(f"{args.name} already has these settings; nothing to change.")
        return Exit.OK
    if not args.wait:
        return _finish(ctx, args.name, "resize", response)
    code, environment = wait_for(ctx.api, args.name, "resize", response, args.timeout, Display(args.name, ctx.stderr))
    # A failed resize is READY too, with the previous spec and a statusReason saying why.
    spec = environment.get("spec") or {}
    applied = all(spec.get(field, False if field == "scheduling" else None) == value for field, value in body.items())
    if code == Exit.OK and not applied:
        ctx.note(f"mfenv: {args.name} was not resized: {environment.get('statusReason') or 'no reason was given'}")
        code = Exit.FAILED
    if args.json:
        ctx.print_json(environment)
    return code


def cmd_delete(ctx: Context) -> int:
    query = {"purge": "true"} if ctx.args.purge else None
    response = ctx.api.request("DELETE", _path_of(ctx.args.name), query=query, ok=(200, 202))
    return _finish(ctx, ctx.args.name, "delete", response)


def cmd_list(ctx: Context) -> int:
    body = ctx.api.request("GET", "/environments").body or {}
    if ctx.args.json:
        ctx.print_json(body)
    else:
        ctx.print(format_table(body.get("environments", [])))
    return Exit.OK


def cmd_show(ctx: Context) -> int:
    environment = ctx.api.request("GET", _path_of(ctx.args.name)).body
    if ctx.args.json:
        ctx.print_json(environment)
    else:
        ctx.print(format_environment(environment))
    return Exit.OK


def prepare(ctx: Context, name: str, force: bool) -> Tuple[str, List[str]]:
    """
    Writes (or refreshes) config_<name>.json and [profile mfenv-<name>] from what the API says now.
    Returns the profile's name and what changed, for a note.
    """
    environment = ctx.api.request("GET", _path_of(name)).body or {}
    status = environment.get("status")
    if status != "READY":
        reason = f" ({environment['statusReason']})" if environment.get("statusReason") else ""
        raise CliError(f"{name} is {status}, not READY{reason}: mfenv show {name} tells more.")
    role_arn = (environment.get("resources") or {}).get("accessRoleArn")
    if not role_arn:
        raise CliError(f"The API did not say which access role {name} has (resources.accessRoleArn).")
    source = ctx.user.source
    if source.kind == "profile" and read_written_profile(ctx.config_path, source.profile):
        raise CliError(
            f"The AWS profile {source.profile} was written by mfenv for an environment: give your own profile "
            "(--profile, or AWS_PROFILE), the one you call the API with.",
            Exit.USAGE,
        )
    # Exactly the bytes the API served: the file Metaflow reads.
    config_text = ctx.api.request("GET", _path_of(name) + "/config").text
    profile = profile_name_for(name)
    home = metaflow_home(ctx.environ)
    section = profile_section(name, role_arn, environment.get("region") or ctx.api.region, source)
    # Both are checked before either is written: a refusal leaves everything as it was.
    config_due = metaflow_config_update(home, name, config_text, force=force)
    profile_text = profile_update(ctx.config_path, section, force=force)
    changed = []
    if config_due:
        changed.append(str(write_metaflow_config(home, name, config_text)))
    if profile_text is not None:
        write_profile(ctx.config_path, profile_text)
        changed.append(f"profile {profile} in {ctx.config_path}")
    # A session cached for an earlier environment of the same name would belong to a deleted role.
    credential_process.forget(ctx.environ, role_arn)
    return profile, changed


def cmd_use(ctx: Context) -> int:
    name = ctx.args.name
    profile, changed = prepare(ctx, name, ctx.args.force)
    source = ctx.user.source
    how = f"from your profile {source.profile}" if source.kind == "profile" else "from your current credentials, by mfenv credentials"
    ctx.note(f"{'Wrote ' + ' and '.join(changed) if changed else 'Already up to date'}; "
             f"the profile {profile} assumes {name}'s access role {how}. Select them with:")
    for line in shell_lines(ctx.environ, name, profile, source):
        ctx.print(line)
    return Exit.OK


def cmd_run(ctx: Context, command: List[str]) -> int:
    name = ctx.args.name
    profile, changed = prepare(ctx, name, ctx.args.force)
    if changed:
        ctx.note(f"mfenv: wrote {' and '.join(changed)}.")
    child = child_environment(ctx.environ, name, profile, ctx.user.source)
    ctx.stdout.flush()
    ctx.stderr.flush()
    try:
        if os.name == "nt":
            # Windows has no exec that keeps the process: run it and pass its exit code on.
            import subprocess

            return subprocess.call(command, env=child)
        # The command takes this process's place: its exit code and signals are the command's own.
        os.execvpe(command[0], command, child)
    except FileNotFoundError:
        ctx.note(f"mfenv: command not found: {command[0]}")
        return 127
    except PermissionError:
        ctx.note(f"mfenv: cannot run {command[0]}: permission denied")
        return 126
    return Exit.OK  # not reached: exec does not return


def split_command(argv: List[str]) -> Tuple[List[str], Optional[List[str]]]:
    """`mfenv ... run NAME -- cmd...`: what follows the first -- is the command, untouched by option parsing."""
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1 :]
    return argv, None


def _run(argv: List[str], environ: Mapping[str, str], stdout, stderr) -> int:
    if argv[:1] == ["credentials"]:
        # Not listed in the help: what a written AWS profile runs (credential_process) to assume the role.
        return credential_process.main(argv[1:], environ, stdout, stderr)
    own, command = split_command(argv)
    parser = build_parser()
    args = parser.parse_args(own)
    if args.command == "run":
        if not command:
            parser.error("run needs the command after --: mfenv run NAME -- python flow.py run")
    elif command is not None:
        parser.error(f"only run takes a command after --, not {args.command}")
    ctx = Context(args, environ, stdout, stderr)
    handlers = {"create": cmd_create, "delete": cmd_delete, "list": cmd_list, "show": cmd_show, "use": cmd_use, "resize": cmd_resize}
    if args.command == "run":
        return cmd_run(ctx, command)
    return handlers[args.command](ctx)


def main(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None, stdout=None, stderr=None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    environ = os.environ if environ is None else environ
    try:
        return int(_run(list(sys.argv[1:] if argv is None else argv), environ, stdout, stderr))
    except CliError as error:
        stderr.write(f"mfenv: {error.message}\n")
        return int(error.code)
    except KeyboardInterrupt:
        stderr.write("\nmfenv: interrupted.\n")
        return int(Exit.INTERRUPTED)
    except botocore.exceptions.NoRegionError:
        stderr.write("mfenv: no AWS region: give --region, or set AWS_REGION or a region in your AWS profile.\n")
        return int(Exit.USAGE)
    except Exception as error:  # a person gets a sentence, not a traceback; MFENV_DEBUG=1 shows it
        if environ.get("MFENV_DEBUG"):
            raise
        stderr.write(f"mfenv: unexpected error ({type(error).__name__}: {error}); MFENV_DEBUG=1 shows the details.\n")
        return int(Exit.REFUSED)
