"""Legacy programs: a program that knows nothing of the cloud, run as part of a task.

- :mod:`.process`: ``ctx.run``: a program in its own process group, its output logged line
  by line, stopped with the task;
- :mod:`.staging`: ``ctx.stage_in`` and the parallel upload of many outputs;
- :mod:`.placeholders`: ``{input}``, ``{stem}``, ``{output_dir}``... in a program's arguments;
- :mod:`.task`: the built-in handler behind ``python -m worker exec`` (whose command line is
  ``worker.commands.exec``).

A library: the context and the ``exec`` command use it; it imports nothing of the runner or
the command line. Nothing here is imported by ``python -m worker run`` unless a handler uses
it.
"""
