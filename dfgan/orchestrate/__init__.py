"""Running the pipeline's DVC stages: in parallel over GPUs or workers, or as queued experiments."""
