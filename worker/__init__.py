"""The model process (thin): all logic lives in `attnlens.service` and `attnlens.cli`."""
