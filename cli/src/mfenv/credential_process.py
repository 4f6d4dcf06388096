"""
`python -m mfenv credentials NAME --role-arn ARN --region R`: what the environment's AWS profile runs as its
`credential_process` when the teammate's own credentials are not a named profile (keys in the environment,
an instance or container role). It assumes the access role from those credentials and prints them as
botocore expects, with their Expiration, so botocore runs it again before they run out: a long flow is not
cut off after the role session's hour.

Metaflow starts many processes (one per task, plus S3 workers), and each resolves its credentials. Assuming
the role every time costs about a second (starting Python with botocore, then STS), so the answer is kept in
a cache file readable by its owner only (as the AWS CLI keeps assumed-role credentials in ~/.aws/cli/cache)
and handed out again while it has more than 20 minutes left. That path imports nothing but the standard
library. `mfenv use` and `mfenv run` empty the cache of the role they configure, so an environment created
again under the same name is not served its predecessor's session.
"""
import argparse
import glob
import hashlib
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from typing import Mapping, Optional

#: botocore renews credentials 15 minutes before they expire; cached ones are handed out only while they
#: have more left than this, so botocore never receives credentials it would renew at once.
MIN_REMAINING_SECONDS = 20 * 60
SOURCE_KEY = "MFENV_SOURCE_AWS_ACCESS_KEY_ID"


def cache_dir(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mfenv", "credentials")


def cache_path(environ: Mapping[str, str], role_arn: str) -> str:
    """One file per role and source identity: other keys on the same machine never get this session."""
    source = environ.get(SOURCE_KEY) or environ.get("AWS_ACCESS_KEY_ID") or "chain"
    digest = hashlib.sha256(f"{role_arn}\n{source}".encode("utf-8")).hexdigest()[:32]
    return os.path.join(cache_dir(environ), f"{digest}.json")


def read_cached(path: str, now: Optional[float] = None) -> Optional[dict]:
    """The cached answer if it is there, well-formed and far enough from its Expiration."""
    try:
        with open(path, encoding="utf-8") as cached:
            entry = json.load(cached)
        expires = datetime.fromisoformat(entry["Expiration"]).timestamp()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if expires - (time.time() if now is None else now) <= MIN_REMAINING_SECONDS:
        return None
    return entry


def write_cached(path: str, entry: dict) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        # mkstemp creates the file readable and writable by its owner only.
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entry, out)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def forget(environ: Mapping[str, str], role_arn: str) -> None:
    """Removes every cached session of the role (whoever it was assumed from)."""
    for path in glob.glob(os.path.join(cache_dir(environ), "*.json")):
        try:
            with open(path, encoding="utf-8") as cached:
                if json.load(cached).get("RoleArn") == role_arn:
                    os.unlink(path)
        except (OSError, ValueError, AttributeError):
            continue


def main(argv, environ: Optional[Mapping[str, str]] = None, out=None, err=None) -> int:
    environ = os.environ if environ is None else environ
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(prog="mfenv credentials", description="credential_process of an mfenv AWS profile")
    parser.add_argument("name")
    parser.add_argument("--role-arn", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args(argv)

    path = cache_path(environ, args.role_arn)
    entry = read_cached(path)
    if entry is None:
        # Only now botocore is imported: a cache hit must stay cheap.
        from .errors import CliError
        from .identity import assume_access_role_for_process

        try:
            entry = assume_access_role_for_process(args.name, args.role_arn, args.region, environ)
        except CliError as error:
            err.write(f"mfenv: {error.message}\n")
            return int(error.code)
        try:
            write_cached(path, {**entry, "RoleArn": args.role_arn})
        except OSError as error:
            err.write(f"mfenv: could not cache the role's credentials ({error}); they are used uncached.\n")
    answer = {key: entry[key] for key in ("Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")}
    out.write(json.dumps(answer) + "\n")
    return 0
