"""
Reads a ShardFlow run back with Metaflow's Client API and prints what it finds as one JSON object, for the
acceptance test to check. Run it in the directory the flow ran in (the local metadata lives there) with
the same METAFLOW_HOME / METAFLOW_PROFILE: the artifacts themselves are fetched from the S3 datastore.

usage: python read_run.py <run-id>

It prints facts and the values the flow must have produced from its seed (recomputed here, independently
of the run), and leaves the judging to the test.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from metaflow import Flow, get_namespace  # noqa: E402

from shard_flow import shard_bytes  # noqa: E402


def main(run_id: str) -> None:
    # The default namespace is user:<METAFLOW_USER>: finding the run there shows the payload's user was used.
    flow = Flow("ShardFlow")
    latest = flow.latest_run
    run = flow[run_id]
    params = run["start"].task.data
    seed, shards = params.seed, params.shards

    blobs = []
    for task in run["build"]:
        artifact = task["blob"]
        meta = artifact._object  # the metadata record Metaflow keeps for the artifact: datastore type and root
        value = artifact.data
        blobs.append(
            {
                "task": task.pathspec,
                "shard": task.data.shard,
                "sha": artifact.sha,
                "dsType": meta.get("ds_type"),
                "location": meta.get("location"),
                "length": len(value),
                "sha256": hashlib.sha256(value).hexdigest(),
            }
        )

    join = run["join"].task.data
    end = run["end"].task.data
    expected = {shard: hashlib.sha256(shard_bytes(seed, shard)).hexdigest() for shard in range(shards)}
    print(
        json.dumps(
            {
                "namespace": get_namespace(),
                "latestRunId": latest.id if latest else None,
                "runId": run.id,
                "successful": run.successful,
                "finished": run.finished,
                "steps": sorted(step.id for step in run),
                "seed": seed,
                "shards": shards,
                "blobs": sorted(blobs, key=lambda blob: blob["shard"]),
                "digests": {str(k): v for k, v in join.digests.items()},
                "expectedDigests": {str(k): v for k, v in expected.items()},
                "total": join.total,
                "expectedTotal": sum(shard * 1000 * 1000 + sum(range(1000)) for shard in range(shards)),
                "largestSha256": hashlib.sha256(join.largest).hexdigest(),
                "summary": end.summary,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python read_run.py <run-id>")
    main(sys.argv[1])
