"""The worker side: who owns the models. The API talks to it only through `WorkerClient`."""
