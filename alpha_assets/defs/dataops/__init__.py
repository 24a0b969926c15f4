"""The DataOps cycle (flow_data): the only wiring that touches the network and writes the lakehouse."""
