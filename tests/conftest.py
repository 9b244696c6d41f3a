import os

# Tests never touch the network: any Hub request raises OfflineModeIsEnabled.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
