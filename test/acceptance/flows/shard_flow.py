"""
A small but real Metaflow flow: fan out over shards with `foreach`, build an artifact of about 1 MB in each
branch, join the branches, and keep a summary. The acceptance test runs it with the payload an environment
returns and reads the run back with Metaflow's Client API (read_run.py).

The data is derived from a seed so the reader can recompute what the flow must have stored.
"""
import hashlib
import random

from metaflow import FlowSpec, Parameter, step

SHARD_BYTES = 1 << 20  # 1 MiB per shard: large enough to be stored as a real S3 object, not inlined


def shard_bytes(seed: int, shard: int) -> bytes:
    """Deterministic, incompressible bytes for one shard."""
    return random.Random(seed * 1000 + shard).randbytes(SHARD_BYTES)


class ShardFlow(FlowSpec):
    seed = Parameter("seed", help="Seed of the generated data", type=int, default=7)
    shards = Parameter("shards", help="Number of foreach branches", type=int, default=3)

    @step
    def start(self):
        self.shard_ids = list(range(self.shards))
        self.next(self.build, foreach="shard_ids")

    @step
    def build(self):
        self.shard = self.input
        self.blob = shard_bytes(self.seed, self.shard)
        self.blob_sha256 = hashlib.sha256(self.blob).hexdigest()
        self.numbers = [self.shard * 1000 + i for i in range(1000)]
        self.next(self.join)

    @step
    def join(self, inputs):
        self.digests = {branch.shard: branch.blob_sha256 for branch in inputs}
        self.total = sum(sum(branch.numbers) for branch in inputs)
        self.largest = max(inputs, key=lambda branch: branch.shard).blob
        self.next(self.end)

    @step
    def end(self):
        self.summary = {"shards": len(self.digests), "total": self.total}


if __name__ == "__main__":
    ShardFlow()
