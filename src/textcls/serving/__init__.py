"""Running a trained model: backends (inference variants), runtime settings."""
