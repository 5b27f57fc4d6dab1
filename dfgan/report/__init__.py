"""The report: paired differences with intervals, Holm families, the Markdown tables and the figures."""
