"""
Whose credentials mfenv uses, and how the environment's AWS profile gets them back later.

Two identities matter:

- the teammate's own credentials, from botocore's ordinary chain (environment keys, AWS_PROFILE or --profile,
  IAM Identity Center, session tokens, instance or container roles). They sign the API calls, and they are
  what the access role is assumed *from*;
- the environment's access role, assumed from them, which Metaflow runs under (profile `mfenv-<name>`).

The written profile must keep working for hours, so botocore has to be able to assume the role again on its
own. When the teammate's credentials come from a named profile, `source_profile = <that profile>` does it.
Otherwise (keys in the environment, an instance or container role) the profile names a `credential_process`,
`python -m mfenv credentials NAME`, which assumes the role from the same chain and prints the credentials
with their Expiration, so botocore calls it again before they run out.

The trap: botocore reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY before AWS_PROFILE, so a profile selected
next to keys in the environment is silently skipped and everything runs as the teammate. `mfenv run` takes
the keys out of the command's environment and hands them to the credential process under MFENV_SOURCE_*
names, which nothing else reads.
"""
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional

import botocore.exceptions
import botocore.session

from .errors import CliError, Exit

#: The variables that carry keys; botocore prefers them to any profile.
KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
#: Where `mfenv run` moves the teammate's keys for the credential process (AWS_SECURITY_TOKEN is the old
#: name of the session token, which botocore still reads).
SOURCE_PREFIX = "MFENV_SOURCE_"
#: botocore reads AWS_DEFAULT_PROFILE *before* AWS_PROFILE: left set, it would win over mfenv-<name>.
PROFILE_VARIABLES = ("AWS_DEFAULT_PROFILE", "AWS_PROFILE")

#: botocore credential providers (`Credentials.method`) that read a named profile of ~/.aws/config or
#: ~/.aws/credentials: a role profile can name that profile as its `source_profile`.
PROFILE_METHODS = frozenset(
    {"shared-credentials-file", "config-file", "assume-role", "sso", "custom-process", "login"}
)


@dataclass(frozen=True)
class Source:
    """Where the teammate's credentials come from, as the environment's profile must name it."""

    #: "profile": a named AWS profile; "chain": anything else (environment keys, instance or container role).
    kind: str
    #: The profile's name, for kind "profile".
    profile: Optional[str] = None


@dataclass
class User:
    """The teammate: a botocore session holding their own credentials, and where those come from."""

    session: botocore.session.Session
    credentials: object
    source: Source


def session_without_profile_variables() -> botocore.session.Session:
    """A session that ignores AWS_PROFILE and AWS_DEFAULT_PROFILE (they may name an mfenv profile itself)."""
    return botocore.session.Session(session_vars={"profile": (None, None, None, None)})


def source_keys(environ: Mapping[str, str]) -> Optional[Dict[str, str]]:
    """The teammate's keys that `mfenv run` moved aside, if any."""
    access_key = environ.get(SOURCE_PREFIX + "AWS_ACCESS_KEY_ID")
    secret_key = environ.get(SOURCE_PREFIX + "AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        return None
    token = environ.get(SOURCE_PREFIX + "AWS_SESSION_TOKEN") or environ.get(SOURCE_PREFIX + "AWS_SECURITY_TOKEN")
    return {"access_key": access_key, "secret_key": secret_key, "token": token or None}


def chain_session(environ: Mapping[str, str]) -> botocore.session.Session:
    """
    The teammate's session when their credentials are not a named profile: the keys moved to MFENV_SOURCE_*
    if there are any, else botocore's chain without its profile variables (environment keys, web identity,
    container and instance roles). Profile variables are ignored on purpose: inside `mfenv run` they name the
    environment's own profile, whose credential process would otherwise call itself.
    """
    session = session_without_profile_variables()
    keys = source_keys(environ)
    if keys:
        session.set_credentials(keys["access_key"], keys["secret_key"], keys["token"])
    return session


def active_profile(environ: Mapping[str, str]) -> Optional[str]:
    """The profile botocore would select from the environment (AWS_DEFAULT_PROFILE first, as botocore reads it)."""
    for variable in PROFILE_VARIABLES:
        if environ.get(variable):
            return environ[variable]
    return None


def source_of(session: botocore.session.Session, credentials, explicit_profile: Optional[str]) -> Source:
    """Where the credentials botocore found come from: a profile a role profile can name, or not."""
    method = getattr(credentials, "method", None)
    if method == "env":
        return Source("chain")
    profile = explicit_profile or session.get_config_variable("profile") or "default"
    profiles = session.full_config.get("profiles", {})
    if method in PROFILE_METHODS and profile in profiles:
        return Source("profile", profile=profile)
    if method == "assume-role-with-web-identity" and "web_identity_token_file" in profiles.get(profile, {}):
        return Source("profile", profile=profile)
    return Source("chain")


def resolve_user(
    explicit_profile: Optional[str],
    environ: Mapping[str, str],
    mfenv_profile_source: Callable[[str], Optional[Dict[str, str]]],
) -> User:
    """
    The teammate's own credentials. `mfenv_profile_source(name)` says, for an AWS profile that mfenv wrote,
    which source it names ({"source_profile": ...} or {"credential_process": ...}), else None: inside
    `mfenv run`, or after `mfenv use`, AWS_PROFILE is the environment's profile, whose credentials are the
    access role's, not the teammate's. The API must see the teammate, so mfenv follows the profile back to
    its source.
    """
    try:
        if explicit_profile:
            session = botocore.session.Session(profile=explicit_profile)
            credentials = session.get_credentials()
            source = source_of(session, credentials, explicit_profile)
        else:
            written = None
            profile = active_profile(environ)
            if profile:
                written = mfenv_profile_source(profile)
            if written and written.get("source_profile"):
                session = botocore.session.Session(profile=written["source_profile"])
                credentials = session.get_credentials()
                source = Source("profile", profile=written["source_profile"])
            elif written:
                session = chain_session(environ)
                credentials = session.get_credentials()
                source = Source("chain")
            else:
                session = botocore.session.Session()
                credentials = session.get_credentials()
                source = source_of(session, credentials, None)
    except botocore.exceptions.ProfileNotFound as error:
        raise CliError(
            f"The AWS profile {error.kwargs.get('profile')} is not in your AWS config: "
            "check --profile and AWS_PROFILE (aws configure list-profiles shows yours).",
            Exit.CREDENTIALS,
        ) from None
    except botocore.exceptions.BotoCoreError as error:
        raise credentials_error(error) from None
    if credentials is None:
        raise CliError(
            "No AWS credentials found. Log in as you do for the AWS CLI: aws sso login or aws configure, "
            "then AWS_PROFILE or --profile; or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
            Exit.CREDENTIALS,
        )
    return User(session=session, credentials=credentials, source=source)


def credentials_error(error: Exception) -> CliError:
    """A botocore credential failure as a sentence, with what to do about it."""
    name = type(error).__name__
    if name in ("UnauthorizedSSOTokenError", "SSOTokenLoadError", "TokenRetrievalError", "SSOError"):
        return CliError(
            f"Your IAM Identity Center (SSO) login has expired or is missing ({error}). "
            "Run aws sso login (with --profile if you use one), then try again.",
            Exit.CREDENTIALS,
        )
    return CliError(f"Your AWS credentials could not be loaded: {error}", Exit.CREDENTIALS)


def frozen(credentials):
    """The current keys, renewed first if they are about to expire (botocore's refreshable credentials)."""
    try:
        return credentials.get_frozen_credentials()
    except botocore.exceptions.BotoCoreError as error:
        raise credentials_error(error) from None


# ---- the environment's profile, as `mfenv run` gives it to a command ----


def child_environment(environ: Mapping[str, str], name: str, profile_name: str, source: Source) -> Dict[str, str]:
    """
    The command's environment under `mfenv run`: METAFLOW_PROFILE and AWS_PROFILE select the environment,
    and nothing that botocore reads first can shadow the profile: the key variables are removed and so is
    AWS_DEFAULT_PROFILE. When the profile's credential process needs the teammate's keys, they travel as
    MFENV_SOURCE_* (already there when mfenv runs inside `mfenv run`).
    """
    child: Dict[str, str] = dict(environ)
    if source.kind == "chain":
        for variable in KEY_VARIABLES:
            if environ.get(variable):
                child[SOURCE_PREFIX + variable] = environ[variable]
    for variable in KEY_VARIABLES + PROFILE_VARIABLES:
        child.pop(variable, None)
    child["AWS_PROFILE"] = profile_name
    child["METAFLOW_PROFILE"] = name
    return child


def shell_lines(environ: Mapping[str, str], name: str, profile_name: str, source: Source) -> list:
    """
    What `mfenv use` prints for `eval "$(mfenv use NAME)"`: the two exports and, when the shell holds keys
    that would shadow the profile, the lines that move them aside for the credential process. The keys are
    referred to by variable, never printed.
    """
    lines = [f"export METAFLOW_PROFILE={name}", f"export AWS_PROFILE={profile_name}"]
    present = [variable for variable in KEY_VARIABLES if environ.get(variable)]
    if present and source.kind == "chain":
        lines.extend(f'export {SOURCE_PREFIX}{variable}="${variable}"' for variable in present)
    if present or environ.get("AWS_DEFAULT_PROFILE"):
        lines.append("unset " + " ".join(present + (["AWS_DEFAULT_PROFILE"] if environ.get("AWS_DEFAULT_PROFILE") else [])))
    return lines


def credential_process_command(name: str, role_arn: str, region: str, python: str = sys.executable) -> str:
    """The `credential_process` line: this interpreter runs `mfenv credentials`, quoted for botocore's splitter."""
    args = [python, "-m", "mfenv", "credentials", name, "--role-arn", role_arn, "--region", region]
    if os.name == "nt":
        return subprocess.list2cmdline(args)
    return " ".join(shlex.quote(arg) for arg in args)


def assume_access_role(session: botocore.session.Session, role_arn: str, region: str, session_name: str) -> Dict[str, str]:
    """AssumeRole from the teammate's session; the answer in credential_process form, with its Expiration."""
    sts = session.create_client("sts", region_name=region)
    answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
    keys = answer["Credentials"]
    return {
        "Version": 1,
        "AccessKeyId": keys["AccessKeyId"],
        "SecretAccessKey": keys["SecretAccessKey"],
        "SessionToken": keys["SessionToken"],
        "Expiration": keys["Expiration"].isoformat(),
    }


def assume_access_role_for_process(name: str, role_arn: str, region: str, environ: Mapping[str, str]) -> Dict[str, str]:
    """
    What the profile's credential process hands botocore: the access role assumed from the teammate's
    credentials (the keys `mfenv run` moved to MFENV_SOURCE_*, else the chain without profile variables).
    """
    session = chain_session(environ)
    try:
        if session.get_credentials() is None:
            raise CliError(
                f"No credentials to assume {role_arn} from: run the command through mfenv run {name}, "
                "or export MFENV_SOURCE_AWS_ACCESS_KEY_ID and MFENV_SOURCE_AWS_SECRET_ACCESS_KEY.",
                Exit.CREDENTIALS,
            )
        return assume_access_role(session, role_arn, region, session_name=name)
    except botocore.exceptions.ClientError as error:
        details = error.response.get("Error", {})
        raise CliError(
            f"Could not assume {role_arn}: {details.get('Code')}: {details.get('Message')}. "
            "Only the environment's owner (and the admins) may assume it.",
            Exit.CREDENTIALS,
        ) from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as error:
        raise CliError(f"Could not reach AWS STS to assume {role_arn}: {error}", Exit.NETWORK) from None
    except botocore.exceptions.BotoCoreError as error:
        raise credentials_error(error) from None
