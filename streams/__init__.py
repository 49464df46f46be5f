"""The I/O shell: Faust app, Kafka topics, agents, HTTP views and metrics."""
