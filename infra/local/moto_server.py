"""
moto_server, with DynamoDB requests handled one at a time.

moto's HTTP server is threaded and its DynamoDB backend takes no lock: two TransactWriteItems (or a
conditional write and a transaction) arriving together can both pass their conditions, and a cancelled
transaction restores a copy of the whole table taken before it ran, undoing writes made meanwhile.
DynamoDB itself serializes them, and admission control (quota counters in the registry table) relies on
that, so the emulator does too. Other services keep moto's threading.

Same arguments as moto_server (-H host, -p port).
"""
import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb_lock = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialized_dispatch(self, environ, start_response):
    # DynamoDB's JSON protocol names the operation in X-Amz-Target: "DynamoDB_20120810.TransactWriteItems".
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb_lock:
            return _dispatch(self, environ, start_response)
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _serialized_dispatch

if __name__ == "__main__":
    sys.exit(server.main())
