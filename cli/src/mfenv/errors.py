"""
Every way mfenv can fail, each with an exit code of its own, so that a script can tell "the API said no"
from "you are not logged in" from "the network is down" without reading the message.
"""
from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    #: The API refused the request (its problem document is printed), or another error.
    REFUSED = 1
    #: The command line itself is wrong (argparse uses 2 as well).
    USAGE = 2
    #: Waiting ended in CREATE_FAILED or DELETE_FAILED.
    FAILED = 3
    #: Waiting gave up before the environment settled.
    TIMEOUT = 4
    #: No AWS credentials, or they are expired or refused as a signature.
    CREDENTIALS = 5
    #: No API URL could be found (--api, MFENV_API, the stack output), or the URL is not the mfenv API.
    API_NOT_FOUND = 6
    #: The API (or AWS) could not be reached: connection refused, name not resolved, timeout.
    NETWORK = 7
    #: A file or AWS profile section mfenv would write is not its own; --force overwrites it.
    NOT_OURS = 8
    #: Interrupted with Ctrl-C.
    INTERRUPTED = 130


#: The table printed by `mfenv --help` and repeated in cli/README.md.
EXIT_CODES_HELP = """\
exit codes:
  0    done (with --wait: READY, or DELETED)
  1    the API refused the request (e.g. not found, name taken, quota reached)
  2    the command line is wrong
  3    --wait ended in CREATE_FAILED or DELETE_FAILED (the reason is printed)
  4    --wait timed out; the change goes on (mfenv show NAME)
  5    no AWS credentials, or they are expired or refused
  6    the API was not found (--api, MFENV_API, or the stack's ApiUrl output)
  7    the API or AWS could not be reached (network)
  8    a file or AWS profile mfenv would write is not its own (--force overwrites it)
  130  interrupted
  mfenv run exits with the command's own exit code once the command has started."""


class CliError(Exception):
    """A problem a person can act on: printed as `mfenv: <message>` on stderr, then exit with `code`."""

    def __init__(self, message: str, code: Exit = Exit.REFUSED):
        super().__init__(message)
        self.message = message
        self.code = code
