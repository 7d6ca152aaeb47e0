"""The API process (thin): all logic lives in `attnlens.api`."""
