"""Example handler: the ffmpeg job of ``convert.sh`` written in Python, for handlers that mix
their own code with a legacy program (``ctx.stage_in``, ``ctx.run``, ``ctx.stage_out``).

    python -m worker run examples/legacy/videos.py:to_avi \\
        --param pattern='videos/in/*.mp4' --param output=videos/avi-py
"""

from __future__ import annotations


def to_avi(ctx, pattern, output):
    """Convert every MP4 that ``pattern`` matches to AVI below ``output``; committed with
    the task (all or nothing), each recorded with the clip it came from."""
    out = ctx.scratch / "avi"
    out.mkdir()
    converted = []
    for clip in ctx.stage_in(pattern):  # local paths, downloaded in parallel
        source = clip.relative_to(ctx.scratch / "in").as_posix()  # its lake path
        target = out / (clip.stem + ".avi")
        ctx.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-y", "-i", clip,
                 target], tag=source)
        ctx.stage_out(target, f"{output}/{target.name}", source=source)
        converted.append(source)
        ctx.check_cancelled()
    return {"converted": converted}
