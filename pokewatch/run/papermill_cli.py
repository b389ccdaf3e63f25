"""papermill's own command line, started without two imports it never uses here.

Why: a papermill process of the pipeline spent about 2.4 s before it launched a kernel,
1.8 s of it importing ``rfc3987_syntax`` and ``pyarrow.fs``, optional modules that
neither papermill nor nbformat needs for local notebooks (:mod:`pokewatch.startup`
says why each is there at all). This launcher marks them absent, then hands over to
papermill's CLI unchanged: arguments, engines and exit codes are papermill's, and
``python -m pokewatch.run.papermill_cli --help`` is papermill's help. For the pipeline's
own calls it starts the kernel before importing papermill (:mod:`pokewatch.run.early_kernel`).
The process then ends without tearing its modules down (:func:`pokewatch.startup.exit_now`).
"""
from __future__ import annotations

import sys

from pokewatch.run import early_kernel
from pokewatch.startup import SKIPPED_BY_PAPERMILL, exit_now, skip_unused_imports


def main(argv: list[str] | None = None) -> None:
    skip_unused_imports(SKIPPED_BY_PAPERMILL)
    early = early_kernel.kernel_for(sys.argv[1:] if argv is None else argv)
    if early is not None:
        early_kernel.start(*early)  # boots while papermill is imported (see pokewatch.run.early_kernel)
    from papermill.cli import papermill  # noqa: PLC0415 - after the skip, or it imports them

    papermill.main(args=argv, prog_name="papermill")


if __name__ == "__main__":
    try:
        main()
    except SystemExit as done:  # click's way of returning papermill's exit status
        exit_now(done.code)
