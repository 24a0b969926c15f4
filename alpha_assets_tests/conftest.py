"""Suite-wide setup: the network guard (only loopback may be reached) and the local exchange server fixture."""

pytest_plugins = ["alpha_assets_tests.socket_guard", "alpha_assets_tests.exchange_server"]
