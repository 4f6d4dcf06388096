"""
A scheduled flow without a foreach: the first thing `step-functions create` needs for it is the Step Functions
role (METAFLOW_SFN_IAM_ROLE), so against an environment without scheduling it fails on that, as Metaflow documents.
"""
from metaflow import FlowSpec, schedule, step


@schedule(hourly=True)
class HourlyFlow(FlowSpec):
    @step
    def start(self):
        self.greeting = "hello"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HourlyFlow()
