"""
A flow a teammate schedules: `python scheduled_flow.py step-functions create` deploys it to AWS Step Functions
with a daily EventBridge rule (@schedule). Its foreach needs the environment's DynamoDB table
(METAFLOW_SFN_DYNAMO_DB_TABLE) to compile; the acceptance test deploys it, never runs it.
"""
from metaflow import FlowSpec, schedule, step


@schedule(daily=True)
class NightlyFlow(FlowSpec):
    @step
    def start(self):
        self.parts = ["a", "b", "c"]
        self.next(self.work, foreach="parts")

    @step
    def work(self):
        self.result = self.input.upper()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.results = sorted(branch.result for branch in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NightlyFlow()
