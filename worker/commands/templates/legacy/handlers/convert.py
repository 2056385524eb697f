"""A legacy program, run by a handler of your own: the exports of an old system, in
Latin-1, converted to UTF-8 with ``iconv``, each checked, all committed to the lake
together (or none).

``batch.toml`` runs the program without any Python of yours (``python -m worker exec``,
one task per file); this handler is the same job for when the program needs code around
it (``ctx.stage_in``, ``ctx.run``, ``ctx.stage_out``):

    python -m worker run handlers.convert:to_utf8 --param pattern='raw/exports/*.csv' \\
        --param output=curated/exports-checked/
"""

from __future__ import annotations

from worker import PermanentError


def to_utf8(ctx, pattern, output, encoding="LATIN1"):
    """Convert every lake file ``pattern`` matches from ``encoding`` to UTF-8 below
    ``output``; a file that comes out with another number of lines is bad input."""
    out = ctx.scratch / "utf8"
    out.mkdir()
    converted = []
    for local in ctx.stage_in(pattern):  # local paths, downloaded in parallel
        source = local.relative_to(ctx.scratch / "in").as_posix()  # its lake path
        target = out / local.name
        ctx.run(
            ["iconv", "-f", encoding, "-t", "UTF-8", "-o", target, local], tag=source
        )
        lines, expected = (path.read_bytes().count(b"\n") for path in (target, local))
        if lines != expected:
            raise PermanentError(
                f"{source}: iconv wrote {lines} lines, the export has {expected}"
            )
        ctx.stage_out(target, f"{output.rstrip('/')}/{target.name}", source=source)
        converted.append({"source": source, "lines": lines})
        ctx.check_cancelled()
    return {"converted": converted}
