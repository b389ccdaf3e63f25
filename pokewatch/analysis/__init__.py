"""Reading finished runs: the day's ranking, history, portfolios, plots, pages and alerts.

* :mod:`~pokewatch.analysis.candidates`: the one ranking of "today's strongest flags".
* :mod:`~pokewatch.analysis.history`, :mod:`~pokewatch.analysis.explore`: every attempt in a runs folder, and
  looking back at runs: a card, its prices, run against run, KPIs over time.
* :mod:`~pokewatch.analysis.summary`, :mod:`~pokewatch.analysis.tables`, :mod:`~pokewatch.analysis.card_display`:
  the wording, tables and card names people read.
* :mod:`~pokewatch.analysis.portfolio`: a collector's cards valued with a run's prices.
* :mod:`~pokewatch.analysis.plots`, :mod:`~pokewatch.analysis.report`: figures, ``report.html`` and ``runs/index.html``;
  :mod:`~pokewatch.run.display`: figures shown inline in a kernel.
* :mod:`~pokewatch.analysis.alerts`: the short webhook message when a run finished or failed.
"""
