"""Figures drawn from run and search directories (matplotlib, Agg canvas, PNG files).

`run` draws one run's figures (training curves, dev checks, confusion matrix, per-label
scores, reliability) and the report section linking them; `search` a search's objective
against calls spent; `plots` holds the drawing. matplotlib loads only when a figure is drawn.
"""
