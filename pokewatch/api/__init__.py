"""The PokeWatch serving API: fair values and signals of ``runs/latest`` over HTTP.

``pokewatch serve`` (or ``make serve``) runs :func:`pokewatch.api.app.create_app`
under uvicorn. The modules, in the order a request meets them:

* :mod:`~pokewatch.api.settings`: every setting, from environment variables.
* :mod:`~pokewatch.api.connection_guard`: the uvicorn protocol and options: header
  size limit, request deadline, keep-alive, no proxy headers of uvicorn's own.
* :mod:`~pokewatch.api.middleware`: request id, security headers, body limit, CORS,
  API-key check and rate limit, access log and metrics.
* :mod:`~pokewatch.api.security` and :mod:`~pokewatch.api.ratelimit`: keys and
  token buckets (in memory, or shared in Redis).
* :mod:`~pokewatch.api.routes` and :mod:`~pokewatch.api.schemas`: the endpoints.
* :mod:`~pokewatch.api.model_holder`: the served run (the newest readable one), reloaded atomically.
* :mod:`~pokewatch.api.metrics` and :mod:`~pokewatch.api.logs`: what operators see,
  with URLs redacted by :mod:`pokewatch.redaction`.
* :mod:`~pokewatch.api.notify`: the pipeline's ``health``/``reload`` client (``pokewatch notify``).
"""
