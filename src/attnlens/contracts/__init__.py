"""Shared words of every layer, torch-free: the task list and what each task can be used for, model
families with their FIM spelling, the registries (predictor kinds, model families), and the frozen result
types that cross the worker boundary. The API's schemas are built from these; nothing here imports torch,
transformers or faiss (a CI contract says so)."""
