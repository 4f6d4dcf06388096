"""
The smallest flow that stores something: two steps and a few artifacts. test/acceptance/cli.test.ts runs it
through `mfenv run` and finds its run records and artifacts in the environment's bucket.
"""
from metaflow import FlowSpec, step


class HelloFlow(FlowSpec):
    @step
    def start(self):
        self.greeting = "hello from mfenv"
        self.numbers = list(range(1000))
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.numbers)


if __name__ == "__main__":
    HelloFlow()
