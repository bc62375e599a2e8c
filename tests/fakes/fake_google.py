#!/usr/bin/env python3
"""Fake Google APIs on one loopback port: OAuth token endpoint, Sheets v4, Drive v3, Gmail v1, Pub/Sub v1.

    python3 tests/fakes/fake_google.py --port 0 --host 127.0.0.1 \
        --service-account sa.json [--service-account sa2.json] [--authorized-user user.json] \
        [--token-lifetime 3599] [--pubsub-no-auth]

Prints `LISTENING <port>` on stdout once bound; logs go to stderr. Stops on SIGTERM/SIGINT, or when
the process whose pid is in DOCPIPE_FAKE_PARENT_PID is gone.

Point the clients at it:
  token URL   http://127.0.0.1:<port>/token      (write it as "token_uri" into the test key file; the
                                                 JWT "aud" may be that URL or https://oauth2.googleapis.com/token)
  Sheets      http://127.0.0.1:<port>/           (paths /v4/spreadsheets/...)
  Drive       http://127.0.0.1:<port>/           (paths /drive/v3/... and /upload/drive/v3/...)
  Gmail       http://127.0.0.1:<port>/           (paths /gmail/v1/users/...)
  Pub/Sub     http://127.0.0.1:<port>/           (paths /v1/projects/...; push tokens verify against
                                                 http://127.0.0.1:<port>/oauth2/v3/certs)

Every API call needs `Authorization: Bearer <token from /token, not expired>` (except PUTs to a
resumable session URI, as with the real Drive). Control API under /_fake/ (no auth): see
tests/fakes/README.md and the docstrings of fakegoogle/*.py.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakegoogle.drive import Drive  # noqa: E402
from fakegoogle.gmail import Gmail  # noqa: E402
from fakegoogle.oauth import OAuth  # noqa: E402
from fakegoogle.pubsub import PubSub  # noqa: E402
from fakegoogle.server import App, common_args, serve  # noqa: E402
from fakegoogle.sheets import Sheets  # noqa: E402


def main():
    p = common_args(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    p.add_argument("--service-account", action="append", default=[], metavar="FILE",
                   help="service-account JSON key file whose key may sign JWT assertions (repeatable)")
    p.add_argument("--authorized-user", action="append", default=[], metavar="FILE",
                   help="authorized_user JSON (client_id, client_secret, refresh_token) accepted by the "
                        "refresh_token grant (repeatable)")
    p.add_argument("--token-lifetime", type=int, default=3599, help="expires_in of issued tokens (default 3599)")
    p.add_argument("--pubsub-no-auth", action="store_true",
                   help="Pub/Sub routes need no bearer token (PUBSUB_EMULATOR_HOST mode)")
    args = p.parse_args()

    app = App("fake_google")
    app.add_service(OAuth(args.service_account, args.authorized_user, args.token_lifetime))
    app.add_service(Sheets())
    app.add_service(Drive())
    pubsub = PubSub(no_auth=args.pubsub_no_auth)
    app.add_service(pubsub)
    app.add_service(Gmail(pubsub))
    return serve(app, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
