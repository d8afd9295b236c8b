"""steplift step operator for Amazon SageMaker training jobs."""
