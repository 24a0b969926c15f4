"""The health audit of stored daily bars: its records (:mod:`.records`) and its checks (:mod:`.engine`)."""
