"""
The post-deploy smoke test's flow (infra/smoke.ts): as small as Metaflow allows. `start` leaves an artifact
the script reads back with the Client API, and records the Batch job it ran in (empty when run locally), so
the script can tell a run on the environment's queue from one on this machine.
"""
import os

from metaflow import FlowSpec, step


class SmokeFlow(FlowSpec):
    @step
    def start(self):
        self.answer = 42
        self.batch_job_id = os.environ.get("AWS_BATCH_JOB_ID", "")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SmokeFlow()
