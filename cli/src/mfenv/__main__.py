"""`python -m mfenv`: the same as the `mfenv` command (and what a written AWS profile runs for credentials)."""
import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["credentials"]:
        # The credential process of a written profile, run by botocore again and again: it skips the
        # command line's imports (botocore among them) whenever its cache can answer.
        from .credential_process import main as credentials

        sys.exit(credentials(sys.argv[2:]))
    from .cli import main

    sys.exit(main())
