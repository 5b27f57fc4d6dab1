"""What every part of the pipeline shares: params and settings, artefact paths, errors, devices, logs and files."""
