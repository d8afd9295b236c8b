"""steplift on Google Vertex AI: the ``vertex`` flavor, a GCS artifact store, a job emulator.

Importing this package imports no google.* module; the SDK loads when an operator first
talks to Vertex AI or Cloud Storage.
"""

__version__ = "0.1.0"
