"""Commands for people at a terminal (and for debugging a node), not part of a running task:
the task path never imports this package."""
