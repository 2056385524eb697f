"""Build-and-deploy tools: the application package (``python -m worker package``) and the
Batch command lines that start tasks from it.

A running task never imports this subpackage; it may use the harness's base modules, never
the other way round. Build-time tools come from the ``deploy`` extra (uv, pip, packaging,
pathspec), which no node installs.
"""
