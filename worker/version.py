"""The worker's version, in a module of its own so that any module can name it (the lake's
user agent, the result record) without importing the package's public API. Read as text by
bootstrap/env.sh and worker/deploy/source.py (a checkout's version): keep the line's form."""

__version__ = "0.1.0"
