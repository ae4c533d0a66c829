"""Looking inside models: layer summaries (shapes, parameters, MACs, receptive fields).

    from deepnotes.explain import summarize, format_table
    print(format_table(summarize(model, (3, 224, 224))))
"""

from deepnotes.explain.summary import (
    LayerRow,
    MeasuredField,
    Summary,
    conv_output_size,
    format_table,
    inspect_model,
    measure_receptive_field,
    parse_input_size,
    summarize,
)

__all__ = [
    "LayerRow",
    "MeasuredField",
    "Summary",
    "conv_output_size",
    "format_table",
    "inspect_model",
    "measure_receptive_field",
    "parse_input_size",
    "summarize",
]
