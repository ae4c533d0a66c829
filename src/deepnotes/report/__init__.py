"""Reports: training-curve and confusion-matrix plots, and a self-contained HTML page per run.

    plot_curves(metrics["epochs"], run_dir / "curves.png")
    plot_confusion(confusion_matrix(y_true, y_pred, 10), classes, run_dir / "confusion.png")
    write_run_report(run_dir)                      # -> run_dir / "report.html"

Importing this package is cheap: matplotlib is imported inside the plotting functions and
torch is never imported.
"""

from deepnotes.report.html import embed_png, html_table, write_run_report
from deepnotes.report.plots import confusion_matrix, plot_confusion, plot_curves

__all__ = [
    "confusion_matrix",
    "embed_png",
    "html_table",
    "plot_confusion",
    "plot_curves",
    "write_run_report",
]
