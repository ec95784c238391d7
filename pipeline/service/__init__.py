"""Running many jobs: batches, the watched inbox, job fingerprints for resumable batches, render slots."""
