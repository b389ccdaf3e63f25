"""papermill's own command line, started without two imports it never uses here.

Why: a papermill process of the pipeline spent about 2.4 s before it launched a kernel,
1.8 s of it importing ``rfc3987_syntax`` and ``pyarrow.fs``, optional modules that
neither papermill nor nbformat needs for local notebooks (:mod:`pokewatch.startup`
says why each is there at all). This launcher marks them absent, then hands over to
papermill's CLI unchanged: arguments, engines and exit codes are papermill's, and
``python -m pokewatch.run.papermill_cli --help`` is papermill's help. For the pipeline's
own calls it starts the kernel before importing papermill (:mod:`pokewatch.run.early_kernel`)
and, when the pipeline started it ahead of its turn, warms that kernel and waits to be
released (:mod:`pokewatch.run.head_start`).
The process then ends without tearing its modules down (:func:`pokewatch.startup.exit_now`).
"""
from __future__ import annotations

import sys

from pokewatch.run import early_kernel, head_start
from pokewatch.startup import SKIPPED_BY_PAPERMILL, exit_now, skip_unused_imports


def main(argv: list[str] | None = None) -> None:
    skip_unused_imports(SKIPPED_BY_PAPERMILL)
    args = sys.argv[1:] if argv is None else argv
    if head_start.requested():
        head_start.begin()
    early = early_kernel.kernel_for(args)
    if early is not None:
        early_kernel.start(*early)  # boots while papermill is imported (see pokewatch.run.early_kernel)
    from papermill.cli import papermill  # noqa: PLC0415 - after the skip, or it imports them

    if not head_start.requested():
        papermill.main(args=argv, prog_name="papermill")
        return
    head_start.prepare(args, early[0] if early else None)  # see pokewatch.run.head_start
    try:
        args = head_start.command_line(args)
        papermill.main(args=args, prog_name="papermill")
    except head_start.NotReleased as why:
        head_start.discard(args)
        if why.status:
            print(f"pokewatch: notebook not run: {why}", file=sys.stderr)
        raise SystemExit(why.status) from None
    except BaseException as stopped:  # Ctrl-C, SIGTERM (see pokewatch.run.head_start.prepare)
        if head_start.released_at is not None:
            raise  # stopped while running: papermill kept the notebook, as for any failure
        head_start.discard(args)
        if isinstance(stopped, KeyboardInterrupt):
            raise SystemExit(1) from None
        raise


if __name__ == "__main__":
    try:
        main()
    except SystemExit as done:  # click's way of returning papermill's exit status
        exit_now(done.code)
