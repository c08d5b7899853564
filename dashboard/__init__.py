"""The dashboard's helpers: summaries and Plotly figures the pages draw (no engine logic)."""
