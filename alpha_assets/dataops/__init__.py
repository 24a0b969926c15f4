"""The DataOps cycle's pure logic: the audit of stored bars and the validation of a run's candidates."""
