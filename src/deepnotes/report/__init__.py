"""Reports: training-curve and confusion-matrix plots, masks as pictures (report.masks), and a
self-contained HTML page per run.

    plot_curves(metrics["epochs"], run_dir / "curves.png")
    plot_confusion(cm, classes, run_dir / "confusion.png")      # cm from deepnotes.metrics.confusion_matrix
    write_run_report(run_dir)                      # -> run_dir / "report.html"

Importing this package is cheap: matplotlib is imported inside the plotting functions and
torch is never imported.
"""

from deepnotes.report.html import ReportParts, embed_png, html_table, write_run_report
from deepnotes.report.plots import Panel, plot_confusion, plot_curves

__all__ = [
    "Panel",
    "ReportParts",
    "embed_png",
    "html_table",
    "plot_confusion",
    "plot_curves",
    "write_run_report",
]
