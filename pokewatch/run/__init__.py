"""The run: its folder, manifest, parameters, step cache and the helper commands the bash pipeline calls.

* :mod:`~pokewatch.run.folder`: :class:`~pokewatch.run.folder.RunFolder`, every file of a run folder, named once.
* :mod:`~pokewatch.run.manifest`: the fields of ``manifest.json``, as types.
* :mod:`~pokewatch.run.runs`: run folders, one immutable record per trading day, published atomically;
  :func:`~pokewatch.run.runs.update_manifest` is the manifest's one writer.
* :mod:`~pokewatch.run.parameters`: every notebook parameter, declared and validated once.
* :mod:`~pokewatch.run.model_file`: the run's ``model.npz``, numpy arrays plus JSON; old pickles are refused.
* :mod:`~pokewatch.run.context`: :class:`~pokewatch.run.context.RunContext`, what a notebook needs from its run.
* :mod:`~pokewatch.run.collect`: the collect step: fetch, parse, validate, store, report quality.
* :mod:`~pokewatch.run.steps`, :mod:`~pokewatch.run.caching`: the expensive steps and their disk cache.
* :mod:`~pokewatch.run.helpers`: ``plan``, ``start``, ``should-train``, ``finish`` and ``fail``, as
  ``scripts/run_pipeline.sh`` calls them (``python -m pokewatch pipeline ...``,
  :mod:`pokewatch.cli.commands.pipeline`); imports nothing heavy.
* :mod:`~pokewatch.run.kernel_engine`: the papermill engine the pipeline runs its notebooks with.
* :mod:`~pokewatch.run.papermill_cli`: papermill's command line as the pipeline starts it, minus two unused imports.
"""
