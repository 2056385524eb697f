"""Build-and-deploy tools: the application package (``python -m worker package``), the
Batch command lines that start tasks from it, the pool, job and task documents
(``python -m worker spec``) and a local Batch node that runs them (``python -m worker
local-batch``).

A running task never imports this subpackage; it may use the harness's base modules, never
the other way round. Build-time tools come from the ``deploy`` extra (uv, pip, packaging,
pathspec, tomli), which no node installs.
"""
